"""The leak guard passes the protocol and the nested choice, and fails each mutation that lets test rows in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ssl_featurizer.bench.leakage import LeakError, check_no_leak, fitted_parameters, protocol_fit
from ssl_featurizer.bench.protocol import make_model


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(X.shape) < 0.03] = np.nan  # a few failed featurizations, imputed
    y = np.exp(0.4 * np.nan_to_num(X[:, 0]) + 0.2 * np.nan_to_num(X[:, 1]))
    test = np.arange(0, n, 4)
    return X, y, np.setdiff1d(np.arange(n), test), test


@pytest.mark.parametrize("regressor", ["krr", "krr_log"])
def test_the_protocol_passes_the_guard(regressor):
    X, y, train, test = _data()
    check_no_leak(protocol_fit(regressor, seed=1), X, y, train, test)


def _refit_on_train_and_test(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[Any, np.ndarray]:
    """Mutation: the final model refitted on the training and the test rows."""
    model = make_model("krr", 1).fit(X[np.r_[train, test]], y[np.r_[train, test]])
    return fitted_parameters(model), model.predict(X[test])


def _scaler_on_all_rows(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[Any, np.ndarray]:
    """Mutation: imputer and scaler fitted on every row before the split (the authors' kind of leak)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    prep = [SimpleImputer(keep_empty_features=True).fit(X)]
    prep.append(StandardScaler().fit(prep[0].transform(X)))
    Xs = prep[1].transform(prep[0].transform(X))
    model = make_model("krr", 1).fit(Xs[train], y[train])
    state = {**fitted_parameters(model), "prep.mean_": prep[1].mean_, "prep.scale_": prep[1].scale_}
    return state, model.predict(Xs[test])


def test_the_guard_fails_a_final_model_refitted_on_test_rows():
    X, y, train, test = _data()
    with pytest.raises(LeakError, match="test targets"):
        check_no_leak(_refit_on_train_and_test, X, y, train, test)


def test_the_guard_fails_a_scaler_fitted_on_all_rows():
    X, y, train, test = _data()
    with pytest.raises(LeakError, match="test rows' features"):
        check_no_leak(_scaler_on_all_rows, X, y, train, test)


def _menu_fit(select: Any) -> Any:
    """A nested choice as a guard fit: its state is every inner score, the choice and the refit's hyperparameters."""
    from ssl_featurizer.bench.selection import Menu

    def fit(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[Any, np.ndarray]:
        menu = Menu({"a": X[:, :2], "b": X[:, 2:]}, {"a": ("a",), "b": ("b",), "a+b": ("a", "b")})
        rows = select(menu, y, train, test)
        chosen = next(r for r in rows if r["selected"])
        state = [(r["spec"], r["regressor"], r["inner_mae"], r["selected"]) for r in rows]
        return {"inner": state, "params": chosen["best_params"]}, chosen["predictions"]

    return fit


def _honest_select(menu, y, train, test):
    from ssl_featurizer.bench.selection import select_and_score

    return select_and_score(menu, y, train, test, seed=2, regressors=("krr", "krr_log"), predictions=True)


def _select_scored_on_all_rows(menu, y, train, test):
    """Mutation: the configuration screened by inner CV over every row (test rows included), then refitted on train."""
    from ssl_featurizer.bench.selection import inner_scores, select_and_score

    rows = select_and_score(menu, y, train, test, seed=2, regressors=("krr", "krr_log"), predictions=True)
    leaked = inner_scores(menu, y, np.r_[train, test], seed=2, regressors=("krr", "krr_log"))
    for row in rows:
        row["inner_mae"] = leaked[row["spec"], row["regressor"]]
    return rows


def test_the_nested_choice_passes_the_guard_and_its_mutation_fails_it():
    X, y, train, test = _data(72, seed=4)
    X = np.nan_to_num(X)
    check_no_leak(_menu_fit(_honest_select), X, y, train, test)
    with pytest.raises(LeakError, match="fitted state changed"):
        check_no_leak(_menu_fit(_select_scored_on_all_rows), X, y, train, test)


def test_the_guard_refuses_overlapping_rows():
    X, y, train, _ = _data()
    with pytest.raises(ValueError, match="overlap"):
        check_no_leak(protocol_fit(), X, y, train, train[:5])
