"""The benchmark harness end to end on small real tasks (seconds)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from project_tasks import load_task

from ssl_featurizer.bench import Task, run_benchmark
from ssl_featurizer.bench.descriptors import check_spec, compute
from ssl_featurizer.bench.protocol import splits
from ssl_featurizer.cli import main


@pytest.fixture(scope="module")
def kvrh(shared_file):
    shared_file("tasks/kong2023_log_kvrh.json.gz")
    return load_task("kong2023_log_kvrh", shared_file("README.md").parent, limit=60)


def test_structure_task_end_to_end(kvrh, tmp_path):
    descriptors = ["ssl:0", "ssl:01", "ssl:012:mean-std", "magpie", "symmetry_density", "ssl:01+magpie"]
    res = run_benchmark(kvrh, descriptors, ("krr", "gbr"), seeds=2, out=tmp_path, progress=False)
    assert len(res) == len(descriptors) * 2 * 2
    assert np.isfinite(res[["mae", "rmse", "r2", "seconds_per_input"]].to_numpy()).all()
    assert (res["n_train"] == 48).all() and (res["n_test"] == 12).all()
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert set(summary["descriptor"]) == set(descriptors)
    assert summary.loc[summary.descriptor == "ssl:01+magpie", "n_features"].iloc[0] == 128 + 132
    md = (tmp_path / "summary.md").read_text()
    assert "| ssl:012:mean-std | 384 | 0 |" in md
    for name in ("mae.png", "range.png", "results.csv", "run.json"):
        assert (tmp_path / name).stat().st_size > 0
    # headline: best SSL-containing (descriptor, regressor) pair against the best purely hand-built one
    from ssl_featurizer.bench.report import headline, headline_markdown

    h = headline(res).iloc[0]
    means = res.groupby(["descriptor", "regressor"])["mae"].mean()
    ssl_means = means[[("ssl" in d) for d, _ in means.index]]
    hand_means = means[[("ssl" not in d) for d, _ in means.index]]
    assert h["ssl_mae"] == ssl_means.min() and h["handbuilt_mae"] == hand_means.min()
    assert h["best_ssl"] == "{} ({})".format(*ssl_means.idxmin())
    assert h["verdict"].startswith("SSL wins" if ssl_means.min() < hand_means.min() else "hand-built wins")
    assert "of 1 tasks" in headline_markdown(headline(res))
    # rerun: features come from the cache and the scores are identical
    again = run_benchmark(kvrh, descriptors[:2], ("krr",), seeds=2, out=tmp_path / "again", cache_dir=tmp_path / "features",
                          progress=False)
    first = res[(res.regressor == "krr") & res.descriptor.isin(descriptors[:2])].reset_index(drop=True)
    np.testing.assert_allclose(again["mae"], first["mae"])
    np.testing.assert_allclose(again["seconds_per_input"], first["seconds_per_input"])


def test_rerun_reuses_stored_scores_and_accumulates(kvrh, tmp_path, monkeypatch):
    first = run_benchmark(kvrh, ["ssl:01", "magpie"], ("krr",), seeds=2, out=tmp_path, progress=False)
    import ssl_featurizer.bench.run as bench

    fitted = []
    real = bench.evaluate_split
    monkeypatch.setattr(bench, "evaluate_split", lambda *a, **k: fitted.append(a[4]) or real(*a, **k))
    # same descriptors plus a new regressor and a new descriptor: only the new (descriptor, regressor) pairs are fit
    again = run_benchmark(kvrh, ["ssl:01", "magpie", "ssl:0"], ("krr", "gbr"), seeds=2, out=tmp_path, progress=False)
    assert sorted(fitted) == ["gbr"] * 6 + ["krr"] * 2
    assert len(again) == 3 * 2 * 2
    old = again[again.regressor.eq("krr") & again.descriptor.isin(["ssl:01", "magpie"])].reset_index(drop=True)
    np.testing.assert_allclose(old["mae"], first["mae"])  # reused, not refit
    # a smaller request keeps the earlier scores on disk (the summary covers all of them)
    run_benchmark(kvrh, ["magpie"], ("krr",), seeds=2, out=tmp_path, progress=False)
    assert len(pd.read_csv(tmp_path / "results.csv")) == 12
    assert set(pd.read_csv(tmp_path / "summary.csv").descriptor) == {"ssl:01", "magpie", "ssl:0"}
    # other weights: ssl scores are recomputed, hand-built ones reused
    fitted.clear()
    monkeypatch.setattr(bench, "model_id", lambda model: "another-model@0000")
    run_benchmark(kvrh, ["ssl:01", "magpie"], ("krr",), seeds=2, out=tmp_path, progress=False)
    assert fitted == ["krr", "krr"]
    # other splits: nothing is reused
    fitted.clear()
    run_benchmark(kvrh, ["magpie"], ("krr",), seeds=[5], out=tmp_path, progress=False)
    assert fitted == ["krr"]


def test_concurrent_runs_into_one_folder_keep_each_others_scores(kvrh, tmp_path, monkeypatch):
    import ssl_featurizer.bench.run as bench

    real = bench.compute
    started = []

    def compute_and_let_another_run_finish(spec, *args, **kwargs):
        if not started:  # while this run featurizes, another one scores magpie into the same folder
            started.append(spec)
            run_benchmark(kvrh, ["magpie"], ("krr",), seeds=1, out=tmp_path, progress=False)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(bench, "compute", compute_and_let_another_run_finish)
    run_benchmark(kvrh, ["ssl:0"], ("krr",), seeds=1, out=tmp_path, progress=False)
    assert started == ["ssl:0"]
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert sorted(on_disk.descriptor) == ["magpie", "ssl:0"]
    assert set(pd.read_csv(tmp_path / "summary.csv").descriptor) == {"magpie", "ssl:0"}


def test_krr_log_fits_log_target_and_refuses_non_positive(kvrh):
    from sklearn.compose import TransformedTargetRegressor

    from ssl_featurizer.bench.protocol import evaluate_split, make_model

    X, _ = compute("ssl:01", kvrh)
    _, train, test = splits(kvrh, [0])[0]
    y = 10 ** kvrh.y  # bulk modulus in GPa: positive, heavy-tailed
    model = make_model("krr_log", 0)
    assert isinstance(model, TransformedTargetRegressor)
    model.fit(X[train], y[train])
    inner = model.regressor_  # the same kernel ridge pipeline, fitted to log(y)
    plain = make_model("krr", 0).fit(X[train], np.log(y[train]))
    np.testing.assert_allclose(model.predict(X[test]), np.exp(plain.predict(X[test])), rtol=1e-10)
    assert inner[-1].best_params_ == plain[-1].best_params_
    score = evaluate_split(X, y, train, test, "krr_log", 0)
    assert score["mae"] > 0 and "alpha=" in score["best_params"]
    with pytest.raises(ValueError, match="strictly positive target"):
        evaluate_split(X, kvrh.y - 5.0, train, test, "krr_log", 0)


def test_log_ensemble_is_the_geometric_mean_of_its_members(kvrh):
    from ssl_featurizer.bench.protocol import GBR_L1, evaluate_split, make_model

    X, _ = compute("ssl:01", kvrh)
    _, train, test = splits(kvrh, [0])[0]
    y = 10 ** kvrh.y
    krr = make_model("krr_log", 0).fit(X[train], y[train])
    gbr = make_model("gbr_l1_log", 0).fit(X[train], y[train])
    assert gbr.regressor_[-1].loss == GBR_L1["loss"] == "absolute_error"
    ensemble = make_model("ensemble_log", 0).fit(X[train], y[train])
    np.testing.assert_allclose(ensemble.predict(X[test]),
                               np.sqrt(krr.predict(X[test]) * gbr.predict(X[test])), rtol=1e-8)
    for name in ("gbr_l1_log", "ensemble_log"):
        score = evaluate_split(X, y, train, test, name, 0)
        assert np.isfinite(score["mae"]) and score["n_test"] == len(test)
        with pytest.raises(ValueError, match=f"{name} fits log"):
            evaluate_split(X, y - y.max(), train, test, name, 0)
    assert "alpha=" in evaluate_split(X, y, train, test, "ensemble_log", 0)["best_params"]
    with pytest.raises(ValueError, match="does not take groups"):
        evaluate_split(X, y, train, test, "ensemble_log", 0, groups=np.arange(len(y)))


def test_krr_grid_override_extends_the_protocol_grid(kvrh):
    from ssl_featurizer.bench.protocol import WIDE_KRR_GRID, evaluate_split, make_model

    X, _ = compute("ssl:01", kvrh)
    _, train, test = splits(kvrh, [0])[0]
    base = make_model("krr", 0).fit(X[train], kvrh.y[train])[-1]
    wide = make_model("krr", 0, krr_grid=WIDE_KRR_GRID).fit(X[train], kvrh.y[train])[-1]
    assert set(base.cv_results_) < set(wide.cv_results_)  # a strict superset, scored on the same inner folds
    for key, err in base.cv_results_.items():
        assert wide.cv_results_[key] == pytest.approx(err, rel=1e-9)
    assert min(wide.cv_results_.values()) <= min(base.cv_results_.values())
    forced = evaluate_split(X, kvrh.y, train, test, "krr", 0, krr_grid={"alphas": (10.0,), "gamma_scales": (3.0,)})
    assert "alpha=10" in forced["best_params"]


def test_scaler_is_fit_on_training_rows_only(kvrh):
    X, _ = compute("ssl:01", kvrh)
    from ssl_featurizer.bench.protocol import make_model

    _, train, _ = splits(kvrh, [0])[0]
    model = make_model("gbr", 0).fit(X[train], kvrh.y[train])
    np.testing.assert_allclose(model.named_steps["scale"].mean_, X[train].mean(0), rtol=1e-6, atol=1e-9)


def test_site_task_groups_materials(shared_file):
    shared_file("tasks/magndata_site_moments.csv.gz")
    task = load_task("magndata_site_moments", shared_file("README.md").parent, limit=80)
    for _, train, test in splits(task, 2):
        assert not set(task.groups[train]) & set(task.groups[test])  # no material on both sides
    res = run_benchmark(task, ["ssl_site:01", "element_site", "ssl_site:0+element_site"], ("gbr",), seeds=2,
                        progress=False)
    assert len(res) == 6 and np.isfinite(res["mae"]).all()


def test_user_dataframe_and_spec_checks(crystals):
    df = pd.DataFrame({"structure": list(crystals.values()), "target": [len(s) for s in crystals.values()]})
    task = Task.from_dataframe(df, "structure", "target", name="toy")
    res = run_benchmark(task, ["ssl:01"], ("krr",), seeds=[0, 1], progress=False)
    assert list(res["split"]) == ["seed0", "seed1"]
    with pytest.raises(ValueError, match="unknown descriptor"):
        check_spec("ssl:01+nonsense", "structure")
    with pytest.raises(ValueError, match="does not fit a structure-level task"):
        check_spec("ssl_site:01", "structure")


def test_matbench_folds_are_matbench_own():
    """The computed folds equal the splits shipped with matbench (every regression task), when it is installed."""
    pytest.importorskip("matbench", reason="matbench not installed (pip install --no-deps matbench)")
    from matbench.metadata import mbv01_metadata, mbv01_validation

    from ssl_featurizer.bench.tasks import matbench_folds

    regression = [name for name, meta in mbv01_metadata.items() if meta.task_type == "regression"]
    assert "matbench_dielectric" in regression and len(regression) >= 5
    for name in regression:
        ours = matbench_folds(mbv01_metadata[name].n_samples)
        theirs = list(mbv01_validation.splits[name].values())
        assert len(ours) == len(theirs) == 5
        for (train, test), split in zip(ours, theirs):  # matbench ids number the rows from 1 in dataset order
            assert sorted(test.tolist()) == sorted(int(i.rsplit("-", 1)[1]) - 1 for i in split.test), name
            assert sorted(train.tolist()) == sorted(int(i.rsplit("-", 1)[1]) - 1 for i in split.train), name


def test_matbench_task_loads_without_the_matbench_package(shared_file, monkeypatch):
    path = shared_file("matminer/matbench_dielectric.json.gz")
    monkeypatch.setitem(sys.modules, "matbench", None)  # importing matbench would fail
    monkeypatch.delenv("MATMINER_DATA", raising=False)
    task = load_task("matbench_dielectric", path.parent.parent)
    assert len(task) == 4764 and len(task.folds) == 5 and not task.failures
    tests = np.concatenate([te for _, te in task.folds])
    assert sorted(tests.tolist()) == list(range(len(task)))  # the 5 test folds partition the data
    for train, test in task.folds:
        assert not set(train) & set(test) and len(train) + len(test) == len(task)


def test_matbench_task_row_that_does_not_decode_is_reported_and_others_keep_their_folds(crystals, tmp_path,
                                                                                      monkeypatch):
    import gzip
    import json

    from ssl_featurizer.bench.tasks import matbench_folds

    structures = list(crystals.values())[:12]
    rows = [[s.as_dict(), float(i)] for i, s in enumerate(structures)]
    rows[3][0] = {"@module": "pymatgen.core.structure", "@class": "Structure", "sites": "broken"}
    with gzip.open(tmp_path / "matbench_dielectric.json.gz", "wt") as fh:
        json.dump({"index": list(range(len(rows))), "columns": ["structure", "n"], "data": rows}, fh)
    monkeypatch.setenv("MATMINER_DATA", str(tmp_path))
    task = load_task("matbench_dielectric", tmp_path)
    assert len(task) == 11 and [f["id"] for f in task.failures] == ["3"]
    assert "could not be read" in task.failures[0]["reason"] and "1 source rows left out" in " ".join(task.notes)
    kept = [i for i in range(12) if i != 3]  # task row k is dataset row kept[k]
    for (train, test), (full_train, full_test) in zip(task.folds, matbench_folds(12)):
        assert sorted(kept[k] for k in test) == sorted(set(full_test.tolist()) - {3})
        assert sorted(kept[k] for k in train) == sorted(set(full_train.tolist()) - {3})
    assert list(task.y) == [float(i) for i in kept]


def test_cli_bench(tmp_path, capsys, shared_file):
    data = str(shared_file("tasks/kong2023_log_kvrh.json.gz"))  # a matminer JSON file: its one numeric column
    assert main(["bench", data, "--limit", "40", "--descriptors", "ssl:0,magpie",
                 "--regressors", "gbr", "--seeds", "2", "--out", str(tmp_path), "--exploratory"]) == 0
    out = capsys.readouterr().out
    assert "| ssl:0 | 64 |" in out and out.startswith("EXPLORATORY")
    # the test-scored table is never the default: its flags without --exploratory are refused
    assert main(["bench", data, "--descriptors", "ssl:0", "--out", str(tmp_path)]) == 2
    assert "add --exploratory" in capsys.readouterr().err
    # the project's task names are the studies' business, not the command line's
    assert main(["bench", "kong2023_log_kvrh", "--target", "y", "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_kernel_ridge_cv_matches_sklearn_grid_search():
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV, KFold

    from ssl_featurizer.bench.krr import KernelRidgeCV

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 6))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.05 * rng.normal(size=90)
    y = y - y.mean()  # sklearn's KernelRidge has no intercept; ours centres y, identical when mean is 0
    ours = KernelRidgeCV(alphas=(1e-2, 1e-1, 1.0), gamma_scales=(0.3, 1.0), cv=3, random_state=1).fit(X, y)
    grid = GridSearchCV(KernelRidge(), {"kernel": ["rbf", "laplacian"], "alpha": [1e-2, 1e-1, 1.0],
                                        "gamma": [0.3 / 6, 1.0 / 6]},
                        cv=KFold(3, shuffle=True, random_state=1), scoring="neg_mean_absolute_error").fit(X, y)
    assert ours.best_params_["kernel"] == grid.best_params_["kernel"]
    assert ours.best_params_["alpha"] == grid.best_params_["alpha"]
    assert np.isclose(ours.best_params_["gamma"], grid.best_params_["gamma"])
    # inner folds' CV errors agree up to the (tiny) training-fold mean of y
    assert np.isclose(min(ours.cv_results_.values()), -grid.best_score_, rtol=0.05)
    Xt = rng.normal(size=(20, 6))
    refit = KernelRidge(**grid.best_params_).fit(X, y - y.mean())
    np.testing.assert_allclose(ours.predict(Xt), refit.predict(Xt) + y.mean(), atol=1e-8)


def test_nested_selection_of_layers_and_pooling(kvrh):
    from ssl_featurizer.bench.selection import candidate_features, select_and_score

    candidates = candidate_features(kvrh, "default", layer_sets=("0", "01"))
    assert list(candidates) == ["ssl:0", "ssl:0:mean-std", "ssl:01", "ssl:01:mean-std"]
    for spec in ("ssl:01", "ssl:0:mean-std"):  # slices of the widest featurization equal direct featurizations
        direct, _ = compute(spec, kvrh)
        np.testing.assert_allclose(np.sort(candidates[spec], axis=1), np.sort(direct, axis=1), rtol=1e-10)
    _, train, test = splits(kvrh, [0])[0]
    rows = select_and_score(candidates, kvrh.y, train, test, seed=0)
    chosen = [r for r in rows if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["inner_mae"] == min(r["inner_mae"] for r in rows)
    assert np.isfinite(chosen[0]["test_mae"]) and "test_mae" not in next(r for r in rows if not r["selected"])
    # the choice uses training rows only: scrambling the test targets changes nothing but the test error
    y = kvrh.y.copy()
    y[test] = y[test][::-1]
    again = select_and_score(candidates, y, train, test, seed=0)
    assert [r["selected"] for r in again] == [r["selected"] for r in rows]


def test_regressor_selection_chooses_on_training_rows_only(kvrh, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "studies"))
    import regressor_selection
    from regressor_selection import BASES, COMBOS, one_split

    # every base-learner fit, keyed by exactly what it is fitted on (the learners are seeded: the same key gives
    # the same fitted learner, so a repeated fit is looked up instead of recomputed)
    fitted: dict[tuple, object] = {}
    real_learner = regressor_selection.base_learner

    class RecordedFit:
        def __init__(self, name, seed):
            self.name, self.seed = name, seed

        def fit(self, X, y):
            key = (self.name, self.seed, X.tobytes(), y.tobytes())
            if key not in fitted:
                fitted[key] = real_learner(self.name, self.seed).fit(X, y)
            self.learner = fitted[key]
            return self

        def predict(self, X):
            return self.learner.predict(X)

    monkeypatch.setattr(regressor_selection, "base_learner", RecordedFit)
    X, _ = compute("ssl:01", kvrh)
    _, train, test = splits(kvrh, [0])[0]
    y = 10 ** kvrh.y
    rows = one_split("ssl:01", X, y, "seed0", train, test, seed=0)
    assert [r["combo"] for r in rows] == ["+".join(c) for c in COMBOS]
    assert len(fitted) == len(BASES) * (3 + 1)  # each learner on 3 inner folds and on all training rows
    chosen = [r for r in rows if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["inner_mae"] == min(r["inner_mae"] for r in rows)
    # the same split with different test targets: no learner is fitted on other data (every fit of the second
    # pass is one of the first pass), and the choice (made on training rows) does not move
    y_other = y.copy()
    y_other[test] = y_other[test][::-1]
    again = one_split("ssl:01", X, y_other, "seed0", train, test, seed=0)
    assert len(fitted) == len(BASES) * (3 + 1)
    assert [r["combo"] for r in again if r["selected"]] == [chosen[0]["combo"]]
    assert [r["inner_mae"] for r in again] == [r["inner_mae"] for r in rows]
    from ssl_featurizer.bench.protocol import evaluate_split

    single = next(r for r in rows if r["combo"] == "krr")  # the krr learner alone is the protocol's krr_log
    assert single["test_mae"] == pytest.approx(evaluate_split(X, y, train, test, "krr_log", 0)["mae"], rel=1e-8)
