"""Nested selection of the SSL layer set and pooling, by the same inner cross-validation as the regressor.

For one outer split, every candidate descriptor (e.g. ``ssl:01``, ``ssl:012:mean-std``) is screened by the kernel
ridge inner cross-validation on the training rows with a reduced grid (:data:`SCREEN_GRID`: both kernels, gamma
0.3 / n_features, alpha 0.01 and 0.1 — the same inner folds for every candidate); the candidate with the lowest
inner MAE is then fitted with the full protocol grid of :func:`~ssl_featurizer.bench.protocol.make_model` and
scored on the test rows. The test rows never influence the choice, so models compared this way each get their
best layer set and pooling under identical rules. (Screening with the full grid would cost 6× more kernel
solves for the same decision rule; on 2 CPU cores that is the difference between minutes and hours.)

Candidates of one model are columns of a single featurization (the widest layer set, all poolings), sliced by
feature label, so each model embeds every structure once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import mean_absolute_error

from ssl_featurizer.bench.descriptors import compute
from ssl_featurizer.bench.protocol import make_model
from ssl_featurizer.bench.tasks import Task

LAYER_SETS = ("0", "01", "012", "0123")
POOLINGS = (("mean",), ("mean", "std"))
SCREEN_GRID = {"kernels": ("rbf", "laplacian"), "gamma_scales": (0.3,), "alphas": (1e-2, 1e-1)}


def candidate_features(task: Task, model: str, layer_sets: Sequence[str] = LAYER_SETS,
                       poolings: Sequence[tuple[str, ...]] = POOLINGS,
                       cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """``{spec: X}`` for every layer set × pooling of ``model`` (site tasks: layer sets only).

    Computed from one cached featurization with the union of the layers and poolings.
    """
    from ssl_featurizer.featurizers.site import SSLSiteFeaturizer
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

    layers_all = "".join(sorted(set("".join(layer_sets)), key=int))
    if task.level == "site":
        X, _ = compute(f"ssl_site:{layers_all}", task, cache_dir, model)
        labels = SSLSiteFeaturizer(model=model, layers=layers_all).feature_labels()
        layer_of = np.array([lab.split("_")[0][2:] for lab in labels])
        return {f"ssl_site:{ls}": X[:, np.isin(layer_of, list(ls))] for ls in layer_sets}
    pools_all = tuple(dict.fromkeys(p for pool in poolings for p in pool))
    X, _ = compute(f"ssl:{layers_all}:{'-'.join(pools_all)}", task, cache_dir, model)
    labels = SSLStructureFeaturizer(model=model, layers=layers_all, pooling=pools_all).feature_labels()
    pool_of = np.array([lab.split(" ")[0] for lab in labels])
    layer_of = np.array([lab.split(" ")[1].split("_")[0][2:] for lab in labels])
    out = {}
    for ls in layer_sets:
        for pool in poolings:
            spec = f"ssl:{ls}" + ("" if pool == ("mean",) else f":{'-'.join(pool)}")
            out[spec] = X[:, np.isin(layer_of, list(ls)) & np.isin(pool_of, list(pool))]
    return out


def _fit_candidate(X: np.ndarray, y: np.ndarray, train: np.ndarray, seed: int,
                   groups: np.ndarray | None, screen: bool) -> tuple[Any, float]:
    model = make_model("krr", seed)
    if screen:
        model.set_params(**{f"krr__{k}": v for k, v in SCREEN_GRID.items()})
    if groups is not None:
        model.fit(X[train], y[train], krr__groups=groups[train])
    else:
        model.fit(X[train], y[train])
    return model, min(model[-1].cv_results_.values())


def select_and_score(candidates: dict[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                     seed: int, groups: np.ndarray | None = None, n_jobs: int = 1) -> list[dict[str, Any]]:
    """Screen every candidate on ``train``; fit the one with the lowest inner-CV MAE fully and score it.

    Returns:
        One row per candidate: ``spec``, ``inner_mae`` (screening, training rows only) and ``selected`` (exactly
        one True); the selected row also has ``test_mae`` (full-grid model) and the chosen ``best_params``.
    """
    from joblib import Parallel, delayed

    specs = list(candidates)
    screened = Parallel(n_jobs=n_jobs)(delayed(_fit_candidate)(candidates[s], y, train, seed, groups, True)
                                       for s in specs)
    best = specs[int(np.argmin([inner for _, inner in screened]))]
    model, _ = _fit_candidate(candidates[best], y, train, seed, groups, screen=False)
    pred = model.predict(candidates[best][test])
    rows = [{"spec": s, "inner_mae": inner, "selected": s == best} for s, (_, inner) in zip(specs, screened)]
    rows[specs.index(best)].update(test_mae=mean_absolute_error(y[test], pred),
                                   best_params=";".join(f"{k}={v}" for k, v in model[-1].best_params_.items()))
    return rows
