"""The hooks reference lists every hook the shipped plugins publish, with the right call style.

Read from the plugins' ``hookspecs.py`` files (parsed, not imported), so a hook added, renamed or
removed by a plugin without a row in docs/hooks.md fails here.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "hooks.md"
#: the hooks the issue names; the table must never lose them
REQUIRED = {"value_customer_costs", "value_loyalty_signals", "value_customer_tiers", "value_customer_lost",
            "service_satisfaction", "service_cost_to_serve", "credit_downgraded"}


def published() -> dict[str, tuple[str, bool, list[str]]]:
    """hook name -> (publishing plugin id, firstresult, argument names), from every plugin's hookspecs.py."""
    out = {}
    for path in sorted(ROOT.glob("plugins/*/crm_*/hookspecs.py")):
        plugin = path.parent.name.removeprefix("crm_")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                if any(d.startswith("hookspec") for d in decorators):
                    out[node.name] = (plugin, any("firstresult=True" in d for d in decorators),
                                      [a.arg for a in node.args.args])
    return out


def documented() -> dict[str, tuple[str, str, str]]:
    """hook name -> (publisher, arguments as written, answers) from the table in docs/hooks.md."""
    rows = re.findall(r"^\| (\w+) \| `(\w+)\(([^)]*)\)` \| (one answer|every implementation) \|",
                      HOOKS_DOC.read_text(encoding="utf-8"), flags=re.M)
    return {name: (plugin, args, answers) for plugin, name, args, answers in rows}


def test_the_plugins_publish_hooks() -> None:
    assert set(published()) >= REQUIRED


def test_every_published_hook_is_in_the_reference_and_nothing_else() -> None:
    doc, code = documented(), published()
    assert sorted(set(code) - set(doc)) == [], "add a row to the table in docs/hooks.md"
    assert sorted(set(doc) - set(code)) == [], "docs/hooks.md lists hooks no plugin publishes"


def test_each_row_names_the_publisher_the_arguments_and_the_call_style() -> None:
    doc = documented()
    for name, (plugin, first, args) in published().items():
        assert doc[name] == (plugin, ", ".join(args), "one answer" if first else "every implementation"), name
