"""The examples are models a plugin author copies: they pass the layout check, and the warranty
example is the "Done means" plugin of issue 19 with its glue counted, tabled and listed in the guide.

The examples are imported in subprocesses (importing them here would put their tables on the
shared metadata of this test session).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the suite runs in importlib mode: its helpers by path
from test_docs import clean_env
from test_example_warranty import GLUE_FILES, ROOT, WARRANTY, code_lines

GUIDE = ROOT / "docs" / "plugin-guide.md"

PROBE = """
import json, sys
sys.path.insert(0, {path!r})
from crmcore.plugins import DECLARED, declared
from crmcore.testing import plugin_layout_problems
import {package}.plugin as module
found = {{hook: len(declared({pid!r}, module, hook)) for hook in DECLARED}}
found["profile_section"] = int(hasattr(module, "crm_customer_profile_sections"))
print(json.dumps({{"problems": plugin_layout_problems(module, {pid!r}), "found": found}}))
"""


def probe(pid: str) -> dict[str, object]:
    path = ROOT / "examples" / f"{pid}_plugin"
    res = subprocess.run([sys.executable, "-c", PROBE.format(path=str(path), package=f"crm_{pid}", pid=pid)],
                         cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.parametrize("pid", ["hello", "warranty"])
def test_example_passes_the_layout_check(pid: str) -> None:
    assert probe(pid)["problems"] == []


def test_the_layout_check_would_catch_the_old_hello() -> None:
    """The check is not vacuous on the examples: a command group defined in plugin.py is a problem."""
    res = subprocess.run([sys.executable, "-c", (
        "import sys, click, types\n"
        f"sys.path.insert(0, {str(ROOT / 'examples' / 'hello_plugin')!r})\n"
        "import crm_hello.plugin as m\n"
        "from crmcore.testing import plugin_layout_problems\n"
        "def hook(cli):\n    @cli.group('hello')\n    def hello():\n        pass\n"
        "m.crm_register_commands = hook\n"
        "print(plugin_layout_problems(m, 'hello'))\n")],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert "command 'hello' lives in __main__, not crm_hello.cli" in res.stdout


def test_warranty_has_every_part_of_the_done_means_plugin() -> None:
    found = probe("warranty")["found"]
    assert isinstance(found, dict)
    for hook in ("crm_register_migrations", "crm_register_settings", "crm_register_permissions",
                 "crm_register_bulk_entities", "crm_register_commands", "crm_register_routes", "profile_section"):
        assert found[hook] >= 1, f"the warranty example declares no {hook}"
    models = (WARRANTY / "crm_warranty" / "models.py").read_text(encoding="utf-8")
    assert '__tablename__ = "warranty_' in models and "StateMachine(" in models
    assert "declare_role(" in (WARRANTY / "crm_warranty" / "plugin.py").read_text(encoding="utf-8")


def guide_table() -> dict[str, int]:
    section = GUIDE.read_text(encoding="utf-8").split("## A whole plugin in under 60 lines of glue", 1)[1]
    section = section.split("\n## ", 1)[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^\| `([^`]+)` \| (\d+) \|", section, flags=re.M)}


def test_the_guide_tables_every_glue_file_with_its_count() -> None:
    table = guide_table()
    assert set(table) == set(GLUE_FILES)
    assert table == {f: len(code_lines(WARRANTY / f)) for f in GLUE_FILES}
    stated = re.search(r"warranty plugin has (\d+) lines of glue", GUIDE.read_text(encoding="utf-8"))
    assert stated and int(stated.group(1)) == sum(table.values()) < 60


def test_the_guide_lists_every_glue_line() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    blocks = {m[1]: m[2].splitlines() for m in re.findall(r"```(python|toml)\n# (\S+)\n(.*?)```", text, flags=re.S)}
    for f in GLUE_FILES:
        assert blocks.get(f) == code_lines(WARRANTY / f), f"the guide's listing of {f} differs from the file"


def test_the_count_ignores_only_blanks_comments_and_docstrings(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text('"""Doc."""\n\n# note\nX = 1  # kept\n\n\ndef f() -> None:\n    """Doc\n    two."""\n    return None\n')
    assert code_lines(src) == ["X = 1  # kept", "def f() -> None:", "    return None"]
