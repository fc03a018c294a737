"""Trained scorecards on generated data with a known relationship, and every bad input."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from crm_credit import scorecard, scorecard_apply
from crm_credit.models import CreditModel, CreditModelScore
from crm_credit.scorecard_train import TrainSettings
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.errors import InvalidInput
from crmcore.schemas import CustomerCreate

FAST = TrainSettings(cs=(0.1, 1.0, 10.0), folds=3)


def make_data(path: Path, n: int, seed: int) -> None:
    """bad ~ logistic(-2 + 1.4 * debt_ratio_z + 0.9 * [sector == 'retail']); 'noise' carries nothing."""
    rng = np.random.default_rng(seed)
    debt = rng.normal(0.5, 0.2, n)
    sector = rng.choice(["retail", "industry", "services"], n)
    noise = rng.normal(size=n)
    logit = -2 + 1.4 * (debt - 0.5) / 0.2 + 0.9 * (sector == "retail")
    bad = rng.random(n) < 1 / (1 + np.exp(-logit))
    lines = ["debt_ratio,sector,noise,outcome"]
    for k in range(n):
        d = "" if k % 97 == 0 else f"{debt[k]:.4f}"  # some missing values
        lines.append(f"{d},{sector[k]},{noise[k]:.4f},{'default' if bad[k] else 'repaid'}")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sc")
    make_data(d / "train.csv", 3000, 1)
    make_data(d / "test.csv", 1500, 2)
    return d / "train.csv", d / "test.csv"


@pytest.fixture(scope="module")
def model(data: tuple[Path, Path]) -> scorecard.ScorecardModel:
    return scorecard.train(data[0], "outcome", "default", settings=FAST)


def test_learns_the_known_relationship(model: scorecard.ScorecardModel, data: tuple[Path, Path], tmp_path: Path) -> None:
    iv = {f.name: f.iv for f in model.features}
    assert iv["debt_ratio"] > 0.5 and iv["sector"] > model.cv["iv_min"]
    [noise] = [d for d in model.dropped if d["feature"] == "noise"]  # carries nothing: selected out, and said why
    assert noise["reason"].startswith("information value 0.0") and "threshold chosen by cross-validation" in noise["reason"]
    debt = next(f for f in model.features if f.name == "debt_ratio")
    assert debt.points[0] > debt.points[-1]  # more debt, fewer points
    sector = next(f for f in model.features if f.name == "sector")
    retail = next(p for g, p in zip(sector.groups, sector.points) if "retail" in g)
    assert retail == min(sector.points)
    scorecard.save(model, tmp_path / "m.json")
    res = scorecard.evaluate(tmp_path / "m.json", data[1], "outcome", "default")
    assert res["auc"] > 0.8 and res["gini"] == pytest.approx(2 * res["auc"] - 1, abs=1e-5) and 0.4 < res["ks"] < 1
    # the relationship is known: the best possible AUC on this data is close to what we got
    assert res["auc"] > model.train_metrics["auc"] - 0.05


def test_points_scaling_pdo_and_base(data: tuple[Path, Path]) -> None:
    """score = base + pdo / ln 2 x (ln odds - ln base_odds): doubling pdo doubles the distance to
    the base score, moving the base score moves every score by as much."""
    import pandas as pd

    X, _ = scorecard._frame(pd.read_csv(data[1], dtype=str), ["debt_ratio", "sector", "noise"])
    s20 = scorecard.score_frame(scorecard.train(data[0], "outcome", "default", pdo=20, settings=FAST), X)
    s40 = scorecard.score_frame(scorecard.train(data[0], "outcome", "default", pdo=40, settings=FAST), X)
    s700 = scorecard.score_frame(scorecard.train(data[0], "outcome", "default", base_score=700, settings=FAST), X)
    assert np.allclose(s40 - 600, 2 * (s20 - 600), atol=1e-6)
    assert np.allclose(s700 - s20, 100, atol=1e-6)
    s_odds = scorecard.score_frame(scorecard.train(data[0], "outcome", "default", base_odds=100, settings=FAST), X)
    assert np.allclose(s20 - s_odds, 20 / math.log(2) * math.log(2), atol=1e-6)  # twice the odds: pdo points fewer


def test_cli_train_evaluate_show(ccli, data: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "card.json"
    r = ccli("credit", "scorecard", "train", str(data[0]), "--target", "outcome", "--bad", "default", "--output", str(out), "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert set(j["iv"]) == {"debt_ratio", "sector"} and out.exists() and j["dropped"][0]["feature"] == "noise"
    assert 0.8 < j["cv"]["auc"] < 1
    r = ccli("credit", "scorecard", "evaluate", str(out), str(data[1]), "--target", "outcome", "--bad", "default", "--json")
    assert r.exit_code == 0 and {"auc", "gini", "ks"} <= set(json.loads(r.output))
    r = ccli("credit", "scorecard", "show", str(out))
    assert r.exit_code == 0 and "debt_ratio" in r.output and "Missing" in r.output
    assert json.loads(ccli("credit", "scorecard", "show", str(out), "--json").output)["points"][0]["feature"] == "debt_ratio"


def _csv(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_bad_training_input(ccli, tmp_path: Path, data: tuple[Path, Path]) -> None:
    rows = "\n".join(f"{i},{i % 3},good" for i in range(30))
    one = _csv(tmp_path, "x,y,outcome\n" + rows + "\n")
    empty_col = _csv(tmp_path, "x,blank,outcome\n" + "\n".join(f"{i},,{'bad' if i % 2 else 'good'}" for i in range(30)) + "\n", "e.csv")
    out = str(tmp_path / "m.json")
    cases = [
        ((str(one), "--target", "outcome", "--bad", "bad"), "target column 'outcome' has one class only"),
        ((str(empty_col), "--target", "outcome", "--bad", "bad"), "feature column 'blank' is empty in every row"),
        ((str(data[0]), "--target", "nope", "--bad", "x"), "has no column 'nope'"),
        ((str(tmp_path / "missing.csv"), "--target", "a", "--bad", "b"), "no such file"),
        ((str(_csv(tmp_path, "a,b\n1,x\n", "tiny.csv")), "--target", "b", "--bad", "x"), "one class only"),
        ((str(data[0]), "--target", "outcome", "--bad", "default", "--features", "debt_ratio,zzz"), "no column(s) 'zzz'"),
        ((str(data[0]), "--target", "outcome", "--bad", "default", "--pdo", "0"), "--pdo and --base-odds must be positive"),
    ]
    for args, message in cases:
        r = ccli("credit", "scorecard", "train", *args, "--output", out)
        assert r.exit_code == 1, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, r.output
    assert not Path(out).exists()


def test_a_model_file_that_is_not_one(ccli, tmp_path: Path, data: tuple[Path, Path], model: scorecard.ScorecardModel) -> None:
    good = tmp_path / "good.json"
    scorecard.save(model, good)
    damaged = json.loads(good.read_text())
    damaged["features"][0]["points"] = damaged["features"][0]["points"][:1]
    files = {
        "binary": (b"\x89PNG\r\n\x1a\n\x00\x00", "not a scorecard model (not JSON)"),
        "other json": (b'{"hello": 1}', "not a scorecard model (no \"format\""),
        "list": (b"[1, 2]", "not a scorecard model"),
        "damaged": (json.dumps(damaged).encode(), "feature 'debt_ratio' has 1 points for"),
        "missing key": (json.dumps({**json.loads(good.read_text()), "pdo": "x"}).encode(), "damaged scorecard model: pdo"),
        "future": (json.dumps({**json.loads(good.read_text()), "format_version": 9}).encode(), "format version 9"),
    }
    for name, (content, message) in files.items():
        p = tmp_path / f"{name}.json"
        p.write_bytes(content)
        for args in (("show", str(p)), ("evaluate", str(p), str(data[1]), "--target", "outcome", "--bad", "default"),
                     ("apply", str(p))):
            r = ccli("credit", "scorecard", *args)
            assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, (name, args, r.output)


def test_evaluate_bad_input(ccli, tmp_path: Path, data: tuple[Path, Path], model: scorecard.ScorecardModel) -> None:
    m = tmp_path / "m.json"
    scorecard.save(model, m)
    only_good = _csv(tmp_path, "debt_ratio,sector,noise,outcome\n0.1,retail,0,repaid\n0.2,retail,0,repaid\n")
    lacks = _csv(tmp_path, "debt_ratio,outcome\n0.1,repaid\n0.9,default\n", "l.csv")
    for data_file, message in ((only_good, "one class only"), (lacks, "lacks the model's feature column(s) 'sector'")):
        r = ccli("credit", "scorecard", "evaluate", str(m), str(data_file), "--target", "outcome", "--bad", "default")
        assert r.exit_code == 1 and message in r.output, r.output


def test_apply_scores_customers_and_versions_the_model(make_crm, ccli, tmp_path: Path) -> None:
    import crm_credit.plugin as PLUGIN

    ccrm = make_crm(plugins=[PLUGIN], config={"custom_fields": {"employees": {"type": "int"}}})
    rng = np.random.default_rng(5)
    lines = ["employees,industry,outcome"]
    for k in range(400):
        emp = int(rng.integers(1, 500))
        ind = ["retail", "tech"][k % 2]
        bad = rng.random() < (0.6 if emp < 50 else 0.1)
        lines.append(f"{emp},{ind},{int(bad)}")
    train = _csv(tmp_path, "\n".join(lines) + "\n", "t.csv")
    m1 = tmp_path / "emp.json"
    assert ccli("credit", "scorecard", "train", str(train), "--target", "outcome", "--bad", "1", "--output", str(m1)).exit_code == 0
    with ccrm.unit_of_work() as uow:
        small = uow.customers.create(CustomerCreate(name="Small", industry="retail", attributes={"employees": 5})).id
        big = uow.customers.create(CustomerCreate(name="Big", industry="tech", attributes={"employees": 400})).id
        unknown = uow.customers.create(CustomerCreate(name="Unknown")).id
    r = ccli("credit", "scorecard", "apply", str(m1), "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert (res["version"], res["scored"]) == (1, 3)
    with ccrm.unit_of_work(read_only=True) as uow:
        scores = dict(uow.session.execute(select(CreditModelScore.customer_id, CreditModelScore.score)).all())
        row = uow.session.scalars(select(CreditModel)).one()
        assert row.name == "emp" and row.path == str(m1.resolve()) and row.n_scored == 3
    assert scores[big] > scores[small] and unknown in scores
    # the same file again: the same model row; a retrained file of the same name: version 2
    assert json.loads(ccli("credit", "scorecard", "apply", str(m1), "--json").output)["version"] == 1
    assert ccli("credit", "scorecard", "train", str(train), "--target", "outcome", "--bad", "1", "--pdo", "30",
                "--output", str(m1)).exit_code == 0
    assert json.loads(ccli("credit", "scorecard", "apply", str(m1), "--json").output)["version"] == 2
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(CreditModel)) == 2


def test_apply_with_a_feature_no_customer_has(ccrm: CRM, ccli, tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i % 2}" for i in range(60))
    train = _csv(tmp_path, "shoe_size,outcome\n" + rows + "\n")
    m = tmp_path / "shoe.json"
    assert ccli("credit", "scorecard", "train", str(train), "--target", "outcome", "--bad", "1", "--output", str(m)).exit_code == 0
    with ccrm.unit_of_work() as uow:
        uow.customers.create(CustomerCreate(name="A"))
    r = ccli("credit", "scorecard", "apply", str(m))
    assert r.exit_code == 1 and "model feature 'shoe_size' is neither a credit factor" in r.output
    with ccrm.unit_of_work(read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(CreditModel)) == 0


def test_apply_uses_credit_factors(ccrm: CRM, tmp_path: Path) -> None:
    from crm_credit.testing import Book

    rows = "\n".join(f"{i % 5},{int(i % 5 > 2)}" for i in range(60))
    m = tmp_path / "f.json"
    scorecard.save(scorecard.train(_csv(tmp_path, "complaints_12m,outcome\n" + rows + "\n"), "outcome", "1"), m)
    Book(ccrm).customer("A")
    with ccrm.unit_of_work() as uow:
        assert scorecard_apply.apply(uow, m)["scored"] == 1


def test_train_refuses_an_invalid_output(tmp_path: Path, data: tuple[Path, Path], model: scorecard.ScorecardModel) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        scorecard.save(model, tmp_path / "no" / "dir" / "m.json")
    with pytest.raises(InvalidInput, match="is a directory"):
        scorecard.save(model, tmp_path)
