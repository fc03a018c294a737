"""Shared fixtures of the core suite (the generic ones come from crmcore.testing)."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

# Property-based suites (tests/test_property_*.py): "ci" is reproducible (the same examples every
# run of the same set of tests -- hypothesis also draws constants from the modules already
# imported, so another selection of tests may see other examples; no example database, no
# deadline on a shared machine); HYPOTHESIS_PROFILE=dev explores anew.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TESTPLUGIN_DIR = Path(__file__).parent / "testplugin"
ENTRY_POINTS = """[crmcore.plugins]
testplug = crm_testplug.plugin
needy = crm_needy
broken = crm_broken
"""


def _testplug() -> ModuleType:
    if str(TESTPLUGIN_DIR) not in sys.path:
        sys.path.insert(0, str(TESTPLUGIN_DIR))
    import crm_testplug.plugin

    return crm_testplug.plugin


_testplug()  # its tables must be on the metadata before any test database is created


@pytest.fixture
def testplug() -> Iterator[ModuleType]:
    """The test plugin module (registered in code by the tests that use it), state reset."""
    mod = _testplug()
    mod.reset()
    yield mod
    mod.reset()


@pytest.fixture
def installed_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, testplug: ModuleType) -> ModuleType:
    """Install testplug, needy (requires testplug) and broken (fails to import) through real
    entry points: a dist-info directory on sys.path, as pip would write it."""
    site = tmp_path / "site"
    dist = site / "crm_testplugins-1.2.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: crm-testplugins\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CRM_DISABLE_PLUGINS", raising=False)
    for name in ("crm_needy", "crm_broken"):
        sys.modules.pop(name, None)
    return testplug
