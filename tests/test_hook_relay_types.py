"""``HookRelay``'s typed surface is the hookspecs' contract: every method that fires a core hook
has the spec's parameters with the spec's types, so mypy checks every call of the core against
the contract plugins implement (and a spec change that the relay does not follow fails here)."""
from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crmcore import hookspecs
from crmcore.plugins import HookRelay

# relay method -> the hook it fires (the in-transaction events, guards and view hooks)
FIRED = {name: f"crm_{name}" for name, _ in inspect.getmembers(HookRelay, inspect.isfunction)
         if hasattr(hookspecs, f"crm_{name}") and not name.startswith("register_")}  # register_*: hook and declarations
MAPPED = {"profile_sections": "crm_customer_profile_sections"}
ALL = {**FIRED, **MAPPED}


def test_every_in_transaction_hook_has_a_typed_method() -> None:
    src = inspect.getsource(hookspecs)
    events = re.findall(r"^def (crm_\w+)\(uow: UnitOfWork", src, re.M)
    console = {"crm_console_home_cards", "crm_console_customer_sections", "crm_console_authenticate"}  # the console's own calls
    assert sorted(set(events) - console - set(ALL.values())) == []
    assert len(ALL) == 17  # 15 events and guards, the timeline, the merge, the profile sections


@pytest.mark.parametrize("method, hook", sorted(ALL.items()))
def test_method_parameters_are_the_specs(method: str, hook: str) -> None:
    spec = inspect.signature(getattr(hookspecs, hook))
    mine = inspect.signature(getattr(HookRelay, method))
    params = [p for p in mine.parameters.values() if p.name != "self"]
    assert [(p.name, p.annotation) for p in params] == [(p.name, p.annotation) for p in spec.parameters.values()]
    assert all(p.annotation != "Any" for p in params if p.name in ("uow", "customer", "interaction", "transaction"))


def test_mypy_refuses_a_wrong_call(tmp_path: Path) -> None:
    """The point of the types: a call with the wrong objects is a mypy error, a right one is not."""
    code = textwrap.dedent('''
        from crmcore.models import Customer, Interaction
        from crmcore.plugins import HookRelay
        from crmcore.uow import UnitOfWork


        def fire(relay: HookRelay, uow: UnitOfWork, customer: Customer, interaction: Interaction) -> None:
            relay.customer_created(uow, customer)
            relay.interaction_logged(uow, interaction)
            relay.customer_created(uow, interaction)
            relay.interactions_batch(uow, ["1"])
    ''')
    (tmp_path / "calls.py").write_text(code)
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), "--follow-imports=silent",
                          "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "calls.py")],
                         cwd=root, capture_output=True, text=True, timeout=600, check=False)
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["10", "11"], run.stdout
    assert 'incompatible type "Interaction"; expected "Customer"' in errors[0]
    assert 'List item 0 has incompatible type "str"; expected "int"' in errors[1]
