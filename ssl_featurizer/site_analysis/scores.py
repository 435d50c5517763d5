"""What site embeddings separate, layer by layer: labels from CrystalNN, k-NN accuracy and silhouette per
depth, cosine similarity of site pairs.

* :func:`coordination_labels` — CrystalNN coordination number and best-matching motif of every site.
* :func:`separation_scores` — for every single layer ``l`` and every cumulative layer set ``0..l``, how well
  the embeddings separate elements and motifs: k-NN accuracy under cross-validation grouped by material,
  and silhouette score.
* :func:`cosine_pairs` — cosine similarity of pairs of sites (same material, same element, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def coordination_labels(crystalnn: np.ndarray) -> pd.DataFrame:
    """CrystalNN coordination number and best-matching motif of each site, from its CrystalNN fingerprint.

    The coordination number is the one CrystalNN weights most (the ``wt CN_n`` features); the motif is the
    local order parameter of that coordination number with the largest value (e.g. ``octahedral``), as
    ``"<motif> (CN <n>)"``, or ``"CN <n>"`` where matminer defines no order parameter (CN > 12 or CN 11 lacks
    named motifs beyond q2/q4/q6, which are reported as such). Rows with NaN features get ``cn`` 0 and motif None.

    Args:
        crystalnn: ``(n_sites, 61)`` fingerprints of matminer's ``CrystalNNFingerprint.from_preset("ops")``.

    Returns:
        DataFrame with ``cn``, ``cn_weight``, ``motif`` and ``motif_value`` (order parameter in [0, 1]).
    """
    from matminer.featurizers.site import CrystalNNFingerprint

    labels = CrystalNNFingerprint.from_preset("ops").feature_labels()
    if crystalnn.shape[1] != len(labels):
        raise ValueError(f"expected {len(labels)} CrystalNN fingerprint columns, got {crystalnn.shape[1]}")
    cn_of = np.array([int(lab.rsplit("_", 1)[1]) for lab in labels])
    is_wt = np.array([lab.startswith("wt ") for lab in labels])
    wt_cols = np.flatnonzero(is_wt)
    rows = []
    for x in crystalnn:
        if np.isnan(x).any() or x[wt_cols].max() <= 0:
            rows.append((0, np.nan, None, np.nan))
            continue
        best = wt_cols[int(np.argmax(x[wt_cols]))]
        cn, weight = int(cn_of[best]), float(x[best])
        ops = np.flatnonzero((cn_of == cn) & ~is_wt)
        if len(ops) == 0:
            rows.append((cn, weight, f"CN {cn}", np.nan))
            continue
        values = x[ops] / weight  # matminer multiplies each order parameter by the CN weight
        k = int(np.argmax(values))
        rows.append((cn, weight, f"{labels[ops[k]].rsplit(' CN_', 1)[0]} (CN {cn})", float(values[k])))
    return pd.DataFrame(rows, columns=["cn", "cn_weight", "motif", "motif_value"])


def input_element_classes(elements: Sequence[str], model: str = "default") -> np.ndarray:
    """Each element's class of identical model inputs: elements whose rows of the model's element table are equal.

    The encoder sees an element only through its row of the element feature table, so elements sharing a
    row (e.g. several lanthanides in table v1, the input of cgcnn-ssl-mp2025@1.0) are indistinguishable to it except through their
    environment. Returns e.g. ``"Dy/Er/Gd/Ho/Sm/Tb"`` for each of those, and the symbol itself otherwise.
    """
    from pymatgen.core.periodic_table import Element

    from ssl_featurizer.models.registry import load_model

    table = load_model(model).node_table.numpy()
    symbols = sorted(set(elements) - {""}, key=lambda e: Element(e).Z)
    by_row: dict[bytes, list[str]] = {}
    for e in symbols:
        by_row.setdefault(table[Element(e).Z].tobytes(), []).append(e)
    name = {e: "/".join(sorted(group)) for group in by_row.values() for e in group}
    return np.array([name.get(e) for e in elements], dtype=object)


def depth_layer_sets(n_layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """``("single", (l,))`` for every layer and ``("cumulative", (0, ..., l))`` for every depth."""
    single = [("single", (k,)) for k in range(n_layers + 1)]
    cumulative = [("cumulative", tuple(range(k + 1))) for k in range(n_layers + 1)]
    return single + cumulative


def layer_columns(layers: Sequence[int], width: int) -> np.ndarray:
    """Column indices of ``layers`` in an all-layer embedding ordered layer by layer, ``width`` columns each."""
    return np.concatenate([np.arange(k * width, (k + 1) * width) for k in layers])


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in ``y_true`` of the fraction of their sites predicted right (the definition of
    :func:`sklearn.metrics.balanced_accuracy_score`, without its per-call validation, which cost more than the
    classifier here)."""
    classes, inverse = np.unique(y_true, return_inverse=True)
    hits = np.bincount(inverse, weights=(y_pred == y_true).astype(float), minlength=len(classes))
    return float(np.mean(hits / np.bincount(inverse, minlength=len(classes))))


def separation_scores(embeddings: np.ndarray, labels: Mapping[str, Sequence[Any]], groups: Sequence[Any],
                      width: int = 64, k: int = 5, n_splits: int = 5, min_class_size: int = 20,
                      min_class_groups: int = 5, silhouette_size: int = 4000, seed: int = 0) -> pd.DataFrame:
    """How well each layer set of the site embeddings separates each labelling of the sites.

    For every single layer ``l`` and every cumulative set ``0..l`` (features standardised, Euclidean
    distance), and for every labelling:

    * ``knn_accuracy`` (and ``knn_balanced_accuracy``): a ``k``-nearest-neighbour classifier under
      ``n_splits``-fold cross-validation **grouped by material** (:class:`~sklearn.model_selection.StratifiedGroupKFold`),
      so no site is classified by a symmetry-equivalent copy of itself; ``chance`` is the accuracy of always
      predicting the training folds' most frequent class;
    * ``silhouette``: :func:`sklearn.metrics.silhouette_score` on at most ``silhouette_size`` sites.

    Only classes with at least ``min_class_size`` sites in at least ``min_class_groups`` materials are
    scored (a class seen in one material cannot be learned across materials); ``n_sites`` and ``n_classes``
    say what remained. Sites with NaN embeddings or a None/NaN label are left out.

    Args:
        embeddings: ``(n_sites, n_layer_blocks * width)`` all-layer embeddings (:func:`site_descriptors`).
        labels: name → one label per site (e.g. ``{"element": ..., "motif": ...}``).
        groups: material of each site.
        width: features per layer.
        k: neighbours of the classifier.
        n_splits: cross-validation folds (fewer if there are fewer materials).
        min_class_size: smallest class scored.
        min_class_groups: fewest materials a scored class must appear in.
        silhouette_size: sites sampled for the silhouette score.
        seed: seed of the fold shuffle and the silhouette sample.

    Returns:
        One row per (label, mode, layers): ``label``, ``mode`` (single / cumulative), ``layers`` (e.g. ``"012"``),
        ``depth`` (deepest layer), ``n_sites``, ``n_classes``, ``knn_accuracy``, ``knn_accuracy_std``,
        ``knn_balanced_accuracy``, ``chance``, ``silhouette``.

    Raises:
        ValueError: lengths disagree, or the embedding width is not a multiple of ``width``.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.neighbors import KNeighborsClassifier

    embeddings = np.asarray(embeddings, dtype=float)
    groups = np.asarray(groups)
    if embeddings.shape[1] % width:
        raise ValueError(f"{embeddings.shape[1]} embedding columns is not a multiple of width={width}")
    if len(groups) != len(embeddings):
        raise ValueError(f"{len(groups)} groups for {len(embeddings)} sites")
    n_layers = embeddings.shape[1] // width - 1
    ok_rows = ~np.isnan(embeddings).any(axis=1)
    rows = []
    for name, values in labels.items():
        y = pd.Series(list(values), dtype=object)
        if len(y) != len(embeddings):
            raise ValueError(f"label {name!r}: {len(y)} values for {len(embeddings)} sites")
        valid = ok_rows & y.notna().to_numpy()
        stats = pd.DataFrame({"y": y[valid].astype(str).to_numpy(), "g": groups[valid]})
        per_class = stats.groupby("y").agg(n=("g", "size"), materials=("g", "nunique"))
        kept = per_class.index[(per_class["n"] >= min_class_size) & (per_class["materials"] >= min_class_groups)]
        use = np.flatnonzero(valid)[stats["y"].isin(kept).to_numpy()]
        yk, gk = y.iloc[use].astype(str).to_numpy(), groups[use]
        n_groups = len(np.unique(gk))
        for mode, layers in depth_layer_sets(n_layers):
            base = {"label": name, "mode": mode, "layers": "".join(map(str, layers)), "depth": max(layers),
                    "n_sites": len(use), "n_classes": len(kept)}
            if len(kept) < 2 or n_groups < 2:
                rows.append({**base, "knn_accuracy": np.nan, "knn_accuracy_std": np.nan,
                             "knn_balanced_accuracy": np.nan, "chance": np.nan, "silhouette": np.nan})
                continue
            x = embeddings[np.ix_(use, layer_columns(layers, width))]
            x = (x - x.mean(0)) / (x.std(0) + 1e-12)
            acc, bal, chance = [], [], []
            folds = StratifiedGroupKFold(min(n_splits, n_groups), shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # classes rarer than n_splits
                for tr, te in folds.split(x, yk, gk):
                    pred = KNeighborsClassifier(min(k, len(tr))).fit(x[tr], yk[tr]).predict(x[te])
                    acc.append(float(np.mean(pred == yk[te])))
                    bal.append(balanced_accuracy(yk[te], pred))
                    majority = pd.Series(yk[tr]).mode().iloc[0]
                    chance.append(float(np.mean(yk[te] == majority)))
            try:
                sil = silhouette_score(x, yk, sample_size=min(silhouette_size, len(yk)), random_state=seed)
            except ValueError:  # the sample holds a single class
                sil = np.nan
            rows.append({**base, "knn_accuracy": float(np.mean(acc)), "knn_accuracy_std": float(np.std(acc)),
                         "knn_balanced_accuracy": float(np.mean(bal)), "chance": float(np.mean(chance)),
                         "silhouette": float(sil)})
    return pd.DataFrame(rows)


# ---- figures -------------------------------------------------------------------------------------
def cosine_pairs(embeddings: np.ndarray, table: pd.DataFrame, layers: str = "012", width: int = 64,
                 n_random_pairs: int = 50_000, max_pairs_per_material: int = 100, seed: int = 0) -> pd.DataFrame:
    """Cosine similarity of standardised site embeddings for pairs of magnetic sites.

    Pairs of distinct sites within each material (all of them, or a random ``max_pairs_per_material``, so
    that large magnetic cells do not dominate), and ``n_random_pairs`` random pairs from different
    materials, each with ``same_material``, ``same_element`` and ``abs_moment_difference`` (|m| difference, μB).
    """
    ok = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    x = embeddings[np.ix_(ok, layer_columns([int(c) for c in layers], width))]
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    ids, el, mom = (table[c].to_numpy()[ok] for c in ("id", "element", "magmom"))
    rng = np.random.default_rng(seed)
    parts = []
    for _, idx in pd.Series(np.arange(len(ok))).groupby(ids):
        i, j = np.triu_indices(len(idx), 1)
        if len(i) > max_pairs_per_material:
            keep = rng.choice(len(i), max_pairs_per_material, replace=False)
            i, j = i[keep], j[keep]
        parts.append((idx.to_numpy()[i], idx.to_numpy()[j]))
    a = np.concatenate([p[0] for p in parts]) if parts else np.array([], int)
    b = np.concatenate([p[1] for p in parts]) if parts else np.array([], int)
    ra, rb = rng.integers(0, len(ok), n_random_pairs), rng.integers(0, len(ok), n_random_pairs)
    keep = ids[ra] != ids[rb]
    a, b = np.concatenate([a, ra[keep]]), np.concatenate([b, rb[keep]])
    return pd.DataFrame({"cosine": np.einsum("ij,ij->i", x[a], x[b]), "same_material": ids[a] == ids[b],
                         "same_element": el[a] == el[b], "abs_moment_difference": np.abs(mom[a] - mom[b])})


