"""The evaluation protocol (Kong et al.'s kernel ridge regression, with their scaler leak fixed).

Every model is a scikit-learn ``Pipeline`` fitted on training rows only: mean imputation of failed
featurizations, ``StandardScaler``, then the regressor. Kernel ridge hyperparameters (kernel rbf or
laplacian, alpha, gamma) are chosen by an inner cross-validation on the training rows only
(:class:`~ssl_featurizer.bench.krr.KernelRidgeCV`). Splits are
repeated random 80/20 splits (grouped by material for site tasks) or a task's official folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor, VotingRegressor
from sklearn.impute import SimpleImputer
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ssl_featurizer.bench.krr import KernelRidgeCV
from ssl_featurizer.bench.tasks import Task

REGRESSORS = ("krr", "rf", "gbr")  # the default set
#: every regressor name: the defaults plus three for strictly positive, heavy-tailed targets (such as the
#: refractive index), each fitted to log(y) with predictions exponentiated:
#:
#: - ``krr_log``: kernel ridge, hyperparameters chosen by the same inner CV, on the log scale;
#: - ``gbr_l1_log``: gradient boosting with the absolute-error loss (:data:`GBR_L1`): it fits the conditional
#:   median, the prediction that minimises the MAE, so a heavy tail pulls it less than a squared loss;
#: - ``ensemble_log``: the average of ``krr_log`` and ``gbr_l1_log`` on the log scale (a geometric mean).
KNOWN_REGRESSORS = (*REGRESSORS, "krr_log", "gbr_l1_log", "ensemble_log")
LOG_REGRESSORS = ("krr_log", "gbr_l1_log", "ensemble_log")
#: the absolute-error gradient boosting of ``gbr_l1_log``: fixed, regularised settings (not tuned per task)
GBR_L1 = {"loss": "absolute_error", "learning_rate": 0.05, "max_iter": 600, "max_leaf_nodes": 15,
          "min_samples_leaf": 10, "l2_regularization": 1.0, "max_features": 0.5}
KRR_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0)
KRR_GAMMA_SCALES = (0.1, 0.3, 1.0)  # × 1 / n_features (features are standardised)
#: a grid 10× wider on every side, to check that the protocol grid does not bind (``studies/grid_check.py``)
WIDE_KRR_GRID = {"alphas": (1e-4, *KRR_ALPHAS, 10.0), "gamma_scales": (0.03, *KRR_GAMMA_SCALES, 3.0)}


def splits(task: Task, seeds: int | list[int], test_size: float = 0.2) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(split name, train indices, test indices)``: the official folds, or one 80/20 split per seed."""
    if task.folds is not None:
        return [(f"fold{k}", tr, te) for k, (tr, te) in enumerate(task.folds)]
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    out = []
    for seed in seeds:
        if task.groups is not None:
            splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
            tr, te = next(splitter.split(np.zeros(len(task)), task.y, task.groups))
        else:
            tr, te = next(ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(task.y))
        out.append((f"seed{seed}", tr, te))
    return out


def split_seed(name: str) -> int:
    """The seed of a split from its name: the number its digits spell (``"seed2"`` → 2, ``"fold0"`` → 0,
    ``"r1f3"`` → 13), or 0 when it has none. Seeds inner folds and regressors wherever a split is scored."""
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else 0


def make_model(regressor: str, seed: int, inner_folds: int = 3, krr_grid: dict | None = None) -> Any:
    """The regressor's pipeline (``krr`` tunes kernel, gamma and alpha by inner CV on the training rows).

    ``krr_grid`` (``{"alphas": ..., "gamma_scales": ...}``) replaces the protocol grid, for checks only.
    """
    prep = [("impute", SimpleImputer(strategy="mean", keep_empty_features=True)), ("scale", StandardScaler())]
    if regressor in ("krr", "krr_log", "ensemble_log"):
        grid = {"alphas": KRR_ALPHAS, "gamma_scales": KRR_GAMMA_SCALES, **(krr_grid or {})}
        krr = Pipeline([*prep, ("krr", KernelRidgeCV(**grid, cv=inner_folds, random_state=seed))])
        if regressor == "krr":
            return krr
        if regressor == "krr_log":
            return _log_target(krr)
        return _log_target(VotingRegressor([("krr", krr), ("gbr_l1", make_model("gbr_l1_log", seed).regressor)]))
    if regressor == "gbr_l1_log":
        return _log_target(Pipeline([*prep, ("gbr", HistGradientBoostingRegressor(**GBR_L1, random_state=seed))]))
    if regressor == "rf":
        return Pipeline([*prep, ("rf", RandomForestRegressor(n_estimators=200, n_jobs=1, random_state=seed))])
    if regressor == "gbr":
        return Pipeline([*prep, ("gbr", HistGradientBoostingRegressor(random_state=seed))])
    raise ValueError(f"unknown regressor {regressor!r}; choose from {KNOWN_REGRESSORS}")


def _log_target(model: Any) -> TransformedTargetRegressor:
    return TransformedTargetRegressor(regressor=model, func=np.log, inverse_func=np.exp, check_inverse=False)


def _best_params(fitted: Any) -> dict[str, Any]:
    """The inner-CV choice of a fitted model (kernel ridge's; an ensemble reports its kernel ridge member's)."""
    if isinstance(fitted, TransformedTargetRegressor):
        fitted = fitted.regressor_
    if isinstance(fitted, VotingRegressor):
        fitted = fitted.named_estimators_["krr"]
    return getattr(fitted[-1], "best_params_", {})


def evaluate_split(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, regressor: str, seed: int,
                   groups: np.ndarray | None = None, krr_grid: dict | None = None,
                   predictions: bool = False) -> dict[str, Any]:
    """Fit on ``train`` only, score on ``test``: MAE, RMSE, R² and the chosen hyperparameters.

    ``krr_grid`` replaces the kernel ridge grid (see :func:`make_model`); the benchmark never passes it.
    ``predictions=True`` adds the test rows' predictions (``"predictions"``, in the order of ``test``).
    """
    if regressor in LOG_REGRESSORS and not np.all(y[train] > 0):
        raise ValueError(f"{regressor} fits log(y) and needs a strictly positive target; the smallest training "
                         f"target is {np.min(y[train])!r}")
    if groups is not None and regressor == "ensemble_log":
        raise ValueError("ensemble_log does not take groups (its inner CV would ignore them); use krr_log or "
                         "gbr_l1_log on grouped (site-level) tasks")
    model, pred = fit_predict(X, y, train, test, regressor, seed, groups, krr_grid)
    best = _best_params(model)
    out = {"mae": mean_absolute_error(y[test], pred), "rmse": float(np.sqrt(mean_squared_error(y[test], pred))),
           "r2": r2_score(y[test], pred), "n_train": len(train), "n_test": len(test),
           "best_params": ";".join(f"{k}={v:.3g}" if isinstance(v, float) else
                                   f"{k.split('__')[-1]}={v}" for k, v in best.items())}
    if predictions:
        out["predictions"] = pred
    return out


def fit_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, regressor: str, seed: int,
                groups: np.ndarray | None = None, krr_grid: dict | None = None) -> tuple[Any, np.ndarray]:
    """The protocol's one fit: the regressor's pipeline fitted on the training rows only, and its test predictions.

    Nothing of the test rows (features or targets) reaches the fit; ``tests/test_leakage.py`` checks this with
    :func:`ssl_featurizer.bench.leakage.check_no_leak`.

    Returns:
        ``(fitted model, predictions for X[test])``.
    """
    model = make_model(regressor, seed, krr_grid=krr_grid)
    if groups is not None and regressor in ("krr", "krr_log"):
        model.fit(X[train], y[train], krr__groups=groups[train])
    else:
        model.fit(X[train], y[train])
    return model, model.predict(X[test])


def repeated_kfold(task: Task, repeats: int = 2, folds: int = 5) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Outer splits of the verdict benchmark: the task's official folds, or ``repeats`` × ``folds``-fold CV.

    Every row is tested once per repeat. Site tasks (``task.groups``) are split by material: groups are shuffled
    (seed = repeat) and dealt to folds, so a material's sites never sit on both sides.
    """
    from sklearn.model_selection import GroupKFold, KFold

    if task.folds is not None:
        return [(f"fold{k}", tr, te) for k, (tr, te) in enumerate(task.folds)]
    out = []
    for r in range(repeats):
        if task.groups is not None:
            splitter = GroupKFold(folds, shuffle=True, random_state=r)
            parts = splitter.split(np.zeros(len(task)), task.y, task.groups)
        else:
            parts = KFold(folds, shuffle=True, random_state=r).split(np.zeros(len(task)))
        out += [(f"r{r}f{k}", tr, te) for k, (tr, te) in enumerate(parts)]
    return out
