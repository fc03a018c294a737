"""CI's check that plugins reach the core only through its public door (``crmcore.sdk``).

A shipped plugin, the example plugin and the scaffold's templates may import from
``crmcore``, ``crmcore.sdk`` and the modules of :data:`crmcore.sdk.PUBLIC_MODULES` (and their
public submodules); never a name or a module whose name starts with ``_``.
"""
from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import crmcore.sdk as sdk

ROOT = Path(__file__).resolve().parent.parent


def plugin_sources() -> list[Path]:
    """Every module of every shipped plugin's package, the example plugin and the scaffold templates."""
    found = list(ROOT.glob("plugins/*/crm_*/**/*.py"))
    found += list(ROOT.glob("examples/*/crm_*/**/*.py"))
    found += list(ROOT.glob("crmcore/scaffold/template/__pkg__/**/*.py.tmpl"))
    return sorted(found)


def as_python(path: Path) -> str:
    """The module's source; a scaffold template with its ``${name}`` placeholders filled in."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\$\{(\w+)\}", r"\1", text) if path.suffix == ".tmpl" else text


def public_module(module: str) -> bool:
    if any(part.startswith("_") for part in module.split(".")):
        return False
    if module in sdk.PUBLIC_MODULES:
        return True
    return any(module.startswith(p + ".") for p in sdk.PUBLIC_MODULES if p != "crmcore")


def violations(source: str, where: str) -> list[str]:
    """``file:line: reason`` for each import of a private core name or module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                (node.module == "crmcore" or node.module.startswith("crmcore.")):
            if not public_module(node.module):
                found.append(f"{where}:{node.lineno}: imports from {node.module} (use crmcore.sdk)")
            found += [f"{where}:{node.lineno}: imports private name {a.name} from {node.module}"
                      for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno}: imports module {a.name} (use crmcore.sdk)"
                      for a in node.names if a.name.startswith("crmcore.") and not public_module(a.name)]
    return found


def test_the_check_finds_private_imports() -> None:
    bad = ("from crmcore.services._base import jsonable\nfrom crmcore.schemas.fields import _money\n"
           "import crmcore.cli.output\nfrom crmcore.api.app import unit\n")
    assert len(violations(bad, "x.py")) == 4
    good = "from crmcore.sdk import jsonable\nfrom crmcore import hookimpl\nfrom crmcore.models import Customer\n"
    assert violations(good, "x.py") == []


def test_plugins_use_only_the_public_sdk() -> None:
    sources = plugin_sources()
    assert len(sources) > 40  # the glob found the plugins (a moved tree must not make this pass vacuously)
    problems = [v for p in sources for v in violations(as_python(p), str(p.relative_to(ROOT)))]
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", sorted(sdk._EXPORTS))
def test_every_sdk_name_resolves(name: str) -> None:
    module, attr = sdk._EXPORTS[name]
    assert getattr(sdk, name) is getattr(importlib.import_module(module), attr)


def sdk_table() -> set[str]:
    """The names in the first column of the plugin guide's SDK table."""
    guide = (ROOT / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    section = guide[guide.index("## The plugin SDK"):]
    section = section[:section.index("\n## ", 1)]
    return {n for row in re.findall(r"^\| (`[^|]+) \|", section, flags=re.M) for n in re.findall(r"`(\w+)`", row)}


def test_the_plugin_guide_sdk_table_is_the_sdk() -> None:
    table = sdk_table()
    assert len(table) > 40  # the table was found (a renamed heading must not make this pass)
    assert sorted(set(sdk._EXPORTS) - table) == [], "add these to the plugin guide's SDK table"
    assert sorted(table - set(sdk._EXPORTS)) == [], "the plugin guide's SDK table lists names crmcore.sdk lacks"


def test_the_plugin_guide_names_every_public_module() -> None:
    guide = (ROOT / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    section = guide[guide.index("## The plugin SDK"):guide.index("| Name | What |")]
    named = set(re.findall(r"`(crmcore(?:\.\w+)*)`", section))
    # a submodule of a named package (crmcore.db.dates under crmcore.db) is covered by it
    missing = sorted(m for m in sdk.PUBLIC_MODULES if not any(m == n or m.startswith(n + ".") for n in named - {"crmcore"})
                     and m != "crmcore")
    assert missing == [], f"the plugin guide's SDK section does not name these public modules: {missing}"
