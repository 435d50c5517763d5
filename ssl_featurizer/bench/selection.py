"""Nested selection of the SSL layer set and pooling, by the same inner cross-validation as the regressor.

For one outer split, every candidate descriptor (e.g. ``ssl:01``, ``ssl:012:mean-std``) gets the kernel ridge
pipeline of :func:`~ssl_featurizer.bench.protocol.make_model` fitted on the training rows; its inner
cross-validated MAE (best over kernel, gamma and alpha, with the same inner folds for every candidate) picks the
candidate, and only the picked one is scored on the test rows. The test rows never influence the choice, so two
models compared this way each get their best layer set and pooling under identical rules.

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
                   groups: np.ndarray | None) -> tuple[Any, float]:
    model = make_model("krr", seed)
    if groups is not None:
        model.fit(X[train], y[train], krr__groups=groups[train])
    else:
        model.fit(X[train], y[train])
    return model, min(model[-1].cv_results_.values())


def select_and_score(candidates: dict[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                     seed: int, groups: np.ndarray | None = None, n_jobs: int = 1) -> list[dict[str, Any]]:
    """Fit every candidate on ``train``; mark the one with the lowest inner-CV MAE as selected.

    Returns:
        One row per candidate: ``spec``, ``inner_mae`` (from training rows only), ``test_mae`` and ``selected``
        (exactly one True). Test errors of unselected candidates are reported for transparency only.
    """
    from joblib import Parallel, delayed

    specs = list(candidates)
    fits = Parallel(n_jobs=n_jobs)(delayed(_fit_candidate)(candidates[s], y, train, seed, groups) for s in specs)
    best = int(np.argmin([inner for _, inner in fits]))
    rows = []
    for k, (spec, (model, inner)) in enumerate(zip(specs, fits)):
        pred = model.predict(candidates[spec][test])
        rows.append({"spec": spec, "inner_mae": inner, "test_mae": mean_absolute_error(y[test], pred),
                     "selected": k == best})
    return rows
