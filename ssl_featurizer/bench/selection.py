"""Nested choice of a configuration (descriptor variant × regressor) on the training rows of one outer split.

A :class:`Menu` holds a family's descriptor variants, each a concatenation of named feature blocks (e.g. the
variant ``ssl:012:mean-std+magpie`` is the blocks ``L0 mean``, ``L0 std``, …, ``L2 std`` and ``magpie``). For one
outer split, :func:`select_and_score` gives every configuration an inner cross-validation MAE computed on the
training rows only (3 inner folds, the same folds for every configuration; grouped by material when the task has
groups), takes the configuration with the lowest inner MAE, refits it on all training rows with the full
protocol (:func:`~ssl_featurizer.bench.protocol.evaluate_split`) and scores it on the test rows. The test rows
never influence the choice.

Inner scores, per regressor (features imputed and standardised with training-row statistics):

- ``krr`` / ``krr_log``: kernel ridge on y / on log y (predictions exponentiated), the reduced grid
  :data:`SCREEN_GRID` (both kernels, gamma 0.3 / n_features, alpha 0.01 and 0.1); the inner MAE is the best grid
  point's. Rbf and laplacian distances are sums over columns, so one distance matrix per block serves every
  variant that contains the block, every fold, gamma, alpha and both targets.
- ``gbr``, ``gbr_l1_log``: the protocol's pipelines refitted on each inner training fold.
- ``ensemble_log``: the geometric mean of the best ``krr_log`` grid point's and ``gbr_l1_log``'s out-of-fold
  predictions (the ensemble's two members).

With the single regressor ``krr`` this is the layer-set × pooling choice of the quality gate (identical scores to
a ``KernelRidgeCV`` with :data:`SCREEN_GRID` in the protocol pipeline).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssl_featurizer.bench.descriptors import compute
from ssl_featurizer.bench.krr import distances, fold_mae, fold_predictions
from ssl_featurizer.bench.protocol import KNOWN_REGRESSORS, evaluate_split, make_model, split_seed
from ssl_featurizer.bench.tasks import Task

LAYER_SETS = ("0", "01", "012", "0123")
#: the pooling combinations a selection chooses among (the poolings themselves are ``ssl_featurizer.pooling.POOLINGS``)
POOLING_MENU = (("mean",), ("mean", "std"))
SCREEN_GRID = {"kernels": ("rbf", "laplacian"), "gamma_scales": (0.3,), "alphas": (1e-2, 1e-1)}
INNER_FOLDS = 3


@dataclass
class Menu:
    """Descriptor variants of one family as concatenations of feature blocks.

    Attributes:
        blocks: ``{block name: (n_rows, n_columns) features}``.
        variants: ``{variant spec: block names}`` (concatenated in that order).
        seconds: ``{computed descriptor: featurization seconds per input}`` (steady state, as
            :func:`~ssl_featurizer.bench.descriptors.compute` measured or cached it), for cost estimates.
    """

    blocks: dict[str, np.ndarray]
    variants: dict[str, tuple[str, ...]]
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_features(cls, features: Mapping[str, np.ndarray]) -> Menu:
        """One variant per entry, each its own block."""
        return cls(dict(features), {spec: (spec,) for spec in features})

    def features(self, spec: str) -> np.ndarray:
        """The variant's feature matrix."""
        return np.hstack([self.blocks[b] for b in self.variants[spec]])

    def __getitem__(self, spec: str) -> np.ndarray:
        return self.features(spec)

    def __iter__(self) -> Iterator[str]:
        """The variant specs, in menu order (like the ``{spec: X}`` dict this replaces)."""
        return iter(self.variants)

    def __len__(self) -> int:
        return len(self.variants)


def candidate_features(task: Task, model: str, layer_sets: Sequence[str] = LAYER_SETS,
                       poolings: Sequence[tuple[str, ...]] = POOLING_MENU,
                       cache_dir: str | None = None, prefix: str = "") -> Menu:
    """The :class:`Menu` of every layer set × pooling of ``model`` (site tasks: layer sets only).

    Computed from one cached featurization with the union of the layers and poolings; one block per
    (layer, pooling statistic). ``prefix`` is prepended to variant and block names (e.g. ``"pred/"``).
    """
    from ssl_featurizer.featurizers.site import SSLSiteFeaturizer
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

    layers_all = "".join(sorted(set("".join(layer_sets)), key=int))
    blocks: dict[str, np.ndarray] = {}
    if task.level == "site":
        X, seconds = compute(f"ssl_site:{layers_all}", task, cache_dir, model)
        labels = SSLSiteFeaturizer(model=model, layers=layers_all).feature_labels()
        layer_of = np.array([lab.split("_")[0][2:] for lab in labels])
        for layer in layers_all:
            blocks[f"{prefix}L{layer}"] = X[:, layer_of == layer]
        return Menu(blocks, {f"{prefix}ssl_site:{ls}": tuple(f"{prefix}L{c}" for c in ls) for ls in layer_sets},
                    {f"{prefix}ssl_site:{layers_all}": seconds})
    pools_all = tuple(dict.fromkeys(p for pool in poolings for p in pool))
    spec_all = f"ssl:{layers_all}:{'-'.join(pools_all)}"
    X, seconds = compute(spec_all, task, cache_dir, model)
    labels = SSLStructureFeaturizer(model=model, layers=layers_all, pooling=pools_all).feature_labels()
    pool_of = np.array([lab.split(" ")[0] for lab in labels])
    layer_of = np.array([lab.split(" ")[1].split("_")[0][2:] for lab in labels])
    for layer in layers_all:
        for stat in pools_all:
            blocks[f"{prefix}L{layer} {stat}"] = X[:, (layer_of == layer) & (pool_of == stat)]
    variants = {}
    for ls in layer_sets:
        for pool in poolings:
            spec = f"{prefix}ssl:{ls}" + ("" if pool == ("mean",) else f":{'-'.join(pool)}")
            variants[spec] = tuple(f"{prefix}L{layer} {stat}" for layer in ls for stat in pool)
    return Menu(blocks, variants, {f"{prefix}{spec_all}": seconds})


def _standardised(x: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Training rows of ``x`` imputed and standardised with training-row statistics (as the protocol pipeline)."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    xt = SimpleImputer(strategy="mean", keep_empty_features=True).fit_transform(x[train])
    return StandardScaler().fit_transform(xt)


def inner_scores(menu: Menu | Mapping[str, np.ndarray], y: np.ndarray, train: np.ndarray, seed: int,
                 groups: np.ndarray | None = None, regressors: Sequence[str] = ("krr",)) -> dict[tuple[str, str], float]:
    """Inner-CV MAE of every (variant, regressor) configuration, from the training rows only.

    Args:
        menu: the variants (a plain ``{spec: X}`` mapping is one block per variant).
        y: targets of all rows (only ``y[train]`` is read).
        train: the outer split's training rows.
        seed: seeds the inner folds (and the regressors).
        groups: material of each row (site tasks): inner folds never split a material.
        regressors: any of ``krr``, ``gbr``, ``krr_log``, ``gbr_l1_log``, ``ensemble_log``.

    Returns:
        ``{(spec, regressor): inner MAE}`` in menu order × regressor order.
    """
    from sklearn.model_selection import GroupKFold, KFold

    if not isinstance(menu, Menu):
        menu = Menu.from_features(menu)
    bad = [r for r in regressors if r not in KNOWN_REGRESSORS or r == "rf"]
    if bad:
        raise ValueError(f"regressors {bad} cannot be screened; choose from krr, gbr, krr_log, gbr_l1_log, "
                         "ensemble_log")
    y_tr = np.asarray(y, dtype=float)[train]
    logs = [r for r in regressors if r in ("krr_log", "gbr_l1_log", "ensemble_log")]
    if logs and not np.all(y_tr > 0):
        raise ValueError(f"{logs} fit log(y) and need a strictly positive target; the smallest training target is "
                         f"{y_tr.min()!r}")
    g_tr = None if groups is None else np.asarray(groups)[train]
    splitter = GroupKFold(INNER_FOLDS) if g_tr is not None else KFold(INNER_FOLDS, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(train)), y_tr, g_tr))
    targets = {"y": y_tr, **({"log": np.log(y_tr)} if {"krr_log", "ensemble_log"} & set(regressors) else {})}
    kernel_regs = [r for r in regressors if r in ("krr", "krr_log", "ensemble_log")]
    scores: dict[tuple[str, str], float] = {}
    krr_log_oof: dict[str, np.ndarray] = {}
    if kernel_regs:
        best: dict[tuple[str, str], tuple[float, np.ndarray]] = {}
        used = [b for b in menu.blocks if any(b in v for v in menu.variants.values())]
        scaled = {b: _standardised(menu.blocks[b], train) for b in used}
        for kernel in SCREEN_GRID["kernels"]:
            dist = {b: distances(scaled[b], kernel) for b in used}
            for spec, parts in menu.variants.items():
                d = dist[parts[0]].copy()
                for b in parts[1:]:
                    d += dist[b]
                n_features = sum(scaled[b].shape[1] for b in parts)
                gammas = [g / n_features for g in SCREEN_GRID["gamma_scales"]]
                for (name, _, _), pred in fold_predictions(d, folds, targets, gammas, SCREEN_GRID["alphas"]).items():
                    pred = np.exp(pred) if name == "log" else pred
                    mae = fold_mae(pred, y_tr, folds)
                    if (spec, name) not in best or mae < best[spec, name][0]:
                        best[spec, name] = (mae, pred)
            del dist
        for spec in menu.variants:
            if "krr" in regressors:
                scores[spec, "krr"] = best[spec, "y"][0]
            if "log" in targets:
                krr_log_oof[spec] = best[spec, "log"][1]
                if "krr_log" in regressors:
                    scores[spec, "krr_log"] = best[spec, "log"][0]
    fitted = {"gbr": "gbr", "gbr_l1_log": "gbr_l1_log", "ensemble_log": "gbr_l1_log"}
    for spec in menu.variants:
        x_tr = menu.features(spec)[train]
        oof: dict[str, np.ndarray] = {}
        for name in dict.fromkeys(fitted[r] for r in regressors if r in fitted):
            pred = np.full(len(train), np.nan)
            for itr, ite in folds:
                pred[ite] = make_model(name, seed).fit(x_tr[itr], y_tr[itr]).predict(x_tr[ite])
            oof[name] = pred
        for reg in regressors:
            if reg in ("gbr", "gbr_l1_log"):
                scores[spec, reg] = fold_mae(oof[reg], y_tr, folds)
            elif reg == "ensemble_log":
                pred = np.exp((krr_log_oof[spec] + np.log(oof["gbr_l1_log"])) / 2)
                scores[spec, reg] = fold_mae(pred, y_tr, folds)
    return {(spec, reg): scores[spec, reg] for spec in menu.variants for reg in regressors}


def select_and_score(candidates: Menu | Mapping[str, np.ndarray], y: np.ndarray, train: np.ndarray, test: np.ndarray,
                     seed: int, groups: np.ndarray | None = None, n_jobs: int = 1,
                     regressors: Sequence[str] = ("krr",), predictions: bool = False) -> list[dict[str, Any]]:
    """Screen every configuration on ``train``; fit the one with the lowest inner-CV MAE fully and score it.

    ``n_jobs`` is accepted for compatibility and unused (the screening shares distance matrices in one process).
    ``predictions=True`` adds the selected configuration's test predictions (``"predictions"``, in ``test`` order).

    Returns:
        One row per configuration: ``spec``, ``regressor``, ``inner_mae`` (training rows only) and ``selected``
        (exactly one True); the selected row also has ``test_mae`` (full-protocol refit on ``train``), ``rmse``,
        ``r2`` and the chosen ``best_params``.
    """
    del n_jobs
    menu = candidates if isinstance(candidates, Menu) else Menu.from_features(candidates)
    scores = inner_scores(menu, y, train, seed, groups, regressors)
    spec, reg = min(scores, key=scores.get)
    fit_groups = groups if reg in ("krr", "krr_log") else None
    score = evaluate_split(menu.features(spec), np.asarray(y, dtype=float), train, test, reg, seed, fit_groups,
                           predictions=predictions)
    rows = [{"spec": s, "regressor": r, "inner_mae": inner, "selected": (s, r) == (spec, reg)}
            for (s, r), inner in scores.items()]
    rows[list(scores).index((spec, reg))].update(test_mae=score["mae"], rmse=score["rmse"], r2=score["r2"],
                                                 best_params=score["best_params"])
    if predictions:
        rows[list(scores).index((spec, reg))]["predictions"] = score["predictions"]
    return rows


def select_on_splits(candidates: Menu | Mapping[str, np.ndarray], task: Task,
                     split_list: Iterable[tuple[str, np.ndarray, np.ndarray]],
                     regressors: Sequence[str] = ("krr",),
                     predictions: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray, list[dict[str, Any]]]]:
    """:func:`select_and_score` on each outer split in turn: the nested choice as every study runs it.

    Each split is seeded by its name (:func:`~ssl_featurizer.bench.protocol.split_seed`); inner folds are grouped
    by ``task.groups`` when the task has them. Lazy: a caller can store each split's rows before the next is
    scored (and time it).

    Yields:
        ``(split name, train rows, test rows, select_and_score's rows)`` per split of ``split_list``.
    """
    for name, train, test in split_list:
        yield name, train, test, select_and_score(candidates, task.y, train, test, split_seed(name), task.groups,
                                                  regressors=regressors, predictions=predictions)


def selected(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The selected row of :func:`select_and_score`'s rows (the one with a test score)."""
    return next(row for row in rows if row["selected"])
