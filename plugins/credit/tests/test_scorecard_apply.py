"""Applied trained scorecards: reason codes stored and shown (CLI, API, 360° section), and
population stability monitoring (PSI) with its exit code."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from crm_credit import monitoring, scorecard, services
from crm_credit.models import CreditModelScore
from crm_credit.scorecard_train import TrainSettings
from sqlalchemy import select

from crmcore import CRM
from crmcore.schemas import CustomerCreate

FAST = TrainSettings(cs=(0.1, 1.0), folds=3)


def _rows(n: int, seed: int, small_share: float = 0.3) -> str:
    """bad is likelier for small firms and for retail; the size mix is a parameter (to shift it)."""
    rng = np.random.default_rng(seed)
    lines = ["employees,industry,outcome"]
    for _ in range(n):
        emp = int(rng.integers(1, 50)) if rng.random() < small_share else int(rng.integers(50, 500))
        ind = rng.choice(["retail", "tech"])
        bad = rng.random() < (0.5 if emp < 50 else 0.1) + (0.15 if ind == "retail" else 0)
        lines.append(f"{emp},{ind},{int(bad)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("emp")
    (d / "train.csv").write_text(_rows(1500, 1))
    m = scorecard.train(d / "train.csv", "outcome", "1", settings=FAST, name="emp")
    scorecard.save(m, d / "emp.json")
    return d / "emp.json"


@pytest.fixture
def crm3(make_crm) -> tuple[CRM, dict[str, int]]:
    import crm_credit.plugin as PLUGIN

    crm = make_crm(plugins=[PLUGIN], config={"custom_fields": {"employees": {"type": "int"}}})
    with crm.unit_of_work() as uow:
        ids = {"small": uow.customers.create(CustomerCreate(name="Small", industry="retail", attributes={"employees": 5})).id,
               "big": uow.customers.create(CustomerCreate(name="Big", industry="tech", attributes={"employees": 400})).id,
               "unknown": uow.customers.create(CustomerCreate(name="Unknown")).id}
    return crm, ids


def test_apply_stores_reason_codes_and_every_face_shows_them(crm3, ccli, model_file: Path) -> None:
    crm, ids = crm3
    model, _ = scorecard.load(model_file)
    r = ccli("credit", "scorecard", "apply", str(model_file), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["scored"] == 3 and res["lowest"][0]["customer_id"] == ids["small"]
    with crm.unit_of_work(read_only=True) as uow:
        stored = {c: (s, rs) for c, s, rs in uow.session.execute(
            select(CreditModelScore.customer_id, CreditModelScore.score, CreditModelScore.reasons)).all()}
    small_reasons = stored[ids["small"]][1]
    assert [x["feature"] for x in small_reasons] == ["employees", "industry"]  # small firm costs more than retail
    emp = next(f for f in model.features if f.name == "employees")
    assert small_reasons[0]["points_lost"] == pytest.approx(max(emp.points) - emp.points[0], abs=0.01)
    big = {x["feature"]: x["points_lost"] for x in stored[ids["big"]][1]}
    assert "industry" not in big and big.get("employees", 0) < small_reasons[0]["points_lost"]  # tech is the best bin
    assert stored[ids["big"]][0] > stored[ids["small"]][0]
    assert res["first_reasons"]["employees"] >= 1
    text = ccli("credit", "scorecard", "apply", str(model_file))
    assert text.exit_code == 0 and "Lowest scores" in text.output and "employees (-" in text.output, text.output
    from crm_credit.scorecard_apply import profile_fields

    with crm.unit_of_work(read_only=True) as uow:
        fields = profile_fields(uow, ids["small"])
    assert list(fields) == ["scorecard emp v1"] and "lowered by: employees (-" in fields["scorecard emp v1"]
    with crm.unit_of_work(read_only=True) as uow:
        assert "industry" not in profile_fields(uow, ids["big"])["scorecard emp v1"]


def test_the_360_section_lists_the_model_score(crm3, model_file: Path, ccli) -> None:
    crm, ids = crm3
    from crm_credit.testing import Book

    Book(crm).profile(ids["small"], limit=Decimal(1000))  # the section shows for customers with a credit file
    assert ccli("credit", "scorecard", "apply", str(model_file)).exit_code == 0
    with crm.unit_of_work(read_only=True) as uow:
        from crmcore.models import Customer

        sec = services.profile_section(uow, uow.session.get(Customer, ids["small"]))
    assert "lowered by: employees (-" in sec.fields["scorecard emp v1"]


def test_api_model_scores(crm3, model_file: Path, ccli) -> None:
    from fastapi.testclient import TestClient

    from crmcore.api import create_app
    from crmcore.api.auth import TokenService
    from crmcore.schemas import UserCreate

    crm, ids = crm3
    assert ccli("credit", "scorecard", "apply", str(model_file)).exit_code == 0
    with crm.unit_of_work("setup") as uow:
        uow.users.add(UserCreate(username="root", display_name="Root", roles=["admin"]))
    with crm.unit_of_work("root") as uow:
        h = {"Authorization": f"Bearer {TokenService(uow).create('root', 't')[1]}"}
    client = TestClient(create_app(crm), raise_server_exceptions=False)
    got = client.get(f"/credit/customers/{ids['small']}/model-scores", headers=h)
    assert got.status_code == 200, got.text
    [row] = got.json()
    assert row["model"] == "emp" and row["version"] == 1 and row["reasons"][0]["feature"] == "employees"
    assert client.get("/credit/customers/999999/model-scores", headers=h).status_code == 404
    assert client.get(f"/credit/customers/{ids['small']}/model-scores").status_code == 401


def test_monitor_a_file(ccli, model_file: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.csv"
    same.write_text(_rows(1500, 2))
    shifted = tmp_path / "shifted.csv"
    shifted.write_text(_rows(1500, 3, small_share=0.9))
    r = ccli("credit", "scorecard", "monitor", str(model_file), "--file", str(same), "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert j["status"] == "stable" and j["psi"] < 0.1 and not j["exceeded"]
    assert {f["feature"]: f["status"] for f in j["features"]} == {"employees": "stable", "industry": "stable"}
    r = ccli("credit", "scorecard", "monitor", str(model_file), "--file", str(shifted))
    assert r.exit_code == 1, r.output
    assert "score PSI" in r.output and "retrain" in r.output and "drift: PSI above 0.25" in r.output
    r = ccli("credit", "scorecard", "monitor", str(model_file), "--file", str(shifted), "--fail-above", "5", "--json")
    j = json.loads(r.output)
    assert r.exit_code == 0 and j["features"][0]["feature"] == "employees" and j["features"][0]["status"] == "retrain"
    # the index itself: identical shares give 0, a known shift its textbook value
    assert monitoring.psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert monitoring.psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25 * np.log(2) + 0.25 * np.log(1.5), abs=1e-9)


def test_monitor_the_customers(crm3, ccli, model_file: Path) -> None:
    r = ccli("credit", "scorecard", "monitor", str(model_file), "--json", "--fail-above", "9")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert j["source"] == "active customers" and j["rows"] == 3 and j["training_rows"] == 1500


def test_monitor_bad_input(ccli, model_file: Path, tmp_path: Path) -> None:
    lacks = tmp_path / "lacks.csv"
    lacks.write_text("industry,other\nretail,1\n")
    v1 = json.loads(model_file.read_text())
    v1["format_version"] = 1
    for f in v1["features"]:
        f.pop("shares")
    v1.pop("score_edges"), v1.pop("score_shares")
    old = tmp_path / "old.json"
    old.write_text(json.dumps(v1))
    cases = [(("monitor", str(model_file), "--file", str(lacks)), "lacks.csv lacks the model's feature column(s) 'employees'"),
             (("monitor", str(model_file), "--file", str(tmp_path / "nope.csv")), "no such file"),
             (("monitor", str(model_file), "--file", str(lacks), "--fail-above", "0"), "--fail-above must be a PSI"),
             (("monitor", str(old), "--file", str(lacks)), "has no training population (format version 1); retrain it"),
             (("monitor", str(tmp_path / "missing.json")), "no such model file")]
    for args, message in cases:
        r = ccli("credit", "scorecard", *args)
        assert r.exit_code == 1, (args, r.output)
        assert message in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    r = ccli("credit", "scorecard", "monitor", str(model_file), "--fail-above", "x")
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = ccli("credit", "scorecard", "apply", str(model_file), "--reasons", "0")
    assert r.exit_code == 1 and "--reasons must be between 1 and 20" in r.output
