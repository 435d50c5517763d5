"""The leak guard: nothing of the test rows may reach a fit, checked by perturbing the test rows.

A fit that only reads training rows gives the same fitted state (every learned parameter: imputer statistics,
scaler means and scales, kernel ridge coefficients, chosen hyperparameters; or a nested choice's inner scores)
when the test rows change, and the same test predictions when only the test targets change. :func:`check_no_leak`
fits three times: on the data, with the test targets permuted and rescaled, and with the test rows' features
replaced by noise; any difference in the fitted state, or in the test predictions under permuted targets, is a
leak. ``tests/test_leakage.py`` shows that the guard passes the protocol's :func:`~ssl_featurizer.bench.protocol.
fit_predict` and the nested choice, and fails each mutation (the final model refitted on training + test rows,
the scaler fitted on all rows, a nested choice scored on all rows).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: ``fit(X, y, train, test) -> (fitted state, test predictions)``; the state is anything :func:`same_state` compares
FitFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[Any, np.ndarray]]


class LeakError(AssertionError):
    """A fit changed when only the test rows changed."""


def fitted_parameters(model: Any) -> dict[str, Any]:
    """Every learned attribute (scikit-learn's trailing underscore) of a fitted model and of its parts.

    Walks pipelines, ``TransformedTargetRegressor`` and ``VotingRegressor``; keys are ``"<path>.<attribute>"``.
    """
    out: dict[str, Any] = {}

    def walk(obj: Any, path: str) -> None:
        steps = getattr(obj, "steps", None)
        if steps is not None:
            for name, step in steps:
                walk(step, f"{path}/{name}")
            return
        if hasattr(obj, "regressor_"):
            walk(obj.regressor_, f"{path}/regressor")
        if hasattr(obj, "estimators_"):
            for k, est in enumerate(obj.estimators_):
                walk(est, f"{path}/estimator{k}")
        for key, value in vars(obj).items():
            if key.endswith("_") and not key.startswith("_") and key not in ("regressor_", "estimators_"):
                out[f"{path}.{key}"] = value

    walk(model, "")
    return out


def same_state(a: Any, b: Any, rtol: float = 1e-9) -> bool:
    """Whether two fitted states are equal: nested dicts, lists, tuples, arrays and scalars (arrays to ``rtol``)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_state(a[k], b[k], rtol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, (np.ndarray, float, np.floating)) or isinstance(b, (np.ndarray, float, np.floating)):
        try:
            x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        except (TypeError, ValueError):
            return False
        return x.shape == y.shape and bool(np.allclose(x, y, rtol=rtol, atol=0.0, equal_nan=True))
    if hasattr(a, "get_params") and hasattr(b, "get_params"):  # an estimator held as an attribute
        return type(a) is type(b) and same_state(fitted_parameters(a), fitted_parameters(b), rtol)
    return bool(a == b)


def perturbed(X: np.ndarray, y: np.ndarray, test: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(X with the test rows replaced by noise, y with the test targets permuted and rescaled)``.

    The new test targets keep the sign of the old ones' range (a strictly positive target stays positive, for the
    log regressors) and differ from them.
    """
    rng = np.random.default_rng(seed)
    X_noise = np.array(X, dtype=float, copy=True)
    X_noise[test] = rng.normal(5.0, 10.0, size=X_noise[test].shape)
    y_perm = np.array(y, dtype=float, copy=True)
    shuffled = rng.permutation(y_perm[test])
    y_perm[test] = 3.0 * shuffled + (np.abs(y_perm).max() + 1.0) * (1.0 if np.all(y_perm > 0) else -1.0)
    return X_noise, y_perm


def check_no_leak(fit: FitFunction, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                  seed: int = 0) -> None:
    """Raise :class:`LeakError` if ``fit`` reads anything of the test rows.

    Args:
        fit: ``fit(X, y, train, test) -> (fitted state, test predictions)``.
        X: features of every row.
        y: targets of every row.
        train: training rows.
        test: test rows (disjoint from ``train``).
        seed: seeds the perturbation.

    Raises:
        LeakError: naming what changed (the fitted state under new test targets or test features, or the test
            predictions under new test targets).
    """
    if np.intersect1d(train, test).size:
        raise ValueError("train and test rows overlap")
    X_noise, y_perm = perturbed(X, y, test, seed)
    state, pred = fit(X, y, train, test)
    state_y, pred_y = fit(X, y_perm, train, test)
    if not same_state(state, state_y):
        raise LeakError("the fitted state changed when only the test targets were permuted: the fit reads test "
                        "targets")
    if not np.allclose(pred, pred_y, rtol=1e-9, atol=0.0):
        raise LeakError("the test predictions changed when only the test targets were permuted: the fit reads test "
                        "targets")
    state_x, _ = fit(X_noise, y, train, test)
    if not same_state(state, state_x):
        raise LeakError("the fitted state changed when only the test rows' features were replaced: the fit (e.g. "
                        "its imputer or scaler) reads test features")


def protocol_fit(regressor: str = "krr", seed: int = 0, groups: np.ndarray | None = None) -> FitFunction:
    """The protocol's :func:`~ssl_featurizer.bench.protocol.fit_predict` as a :data:`FitFunction` (state: every
    fitted parameter)."""
    from ssl_featurizer.bench.protocol import fit_predict

    def fit(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[Any, np.ndarray]:
        model, pred = fit_predict(X, y, train, test, regressor, seed, groups)
        return fitted_parameters(model), pred

    return fit
