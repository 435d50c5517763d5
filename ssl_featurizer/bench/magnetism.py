"""Magnetism on MAGNDATA: which chemistry and which local environments the site embeddings encode.

The analysis of Kong et al. (section on magnetic materials) made reproducible and measured:

* :func:`load_site_moments` — the MAGNDATA site-moment task (all sites, sites of ordered structures,
  or Kong et al.'s labelled subset) with every left-out row and its reason (:attr:`MagneticSites.failures`);
  :func:`read_magnetic_cifs` reads your own ``.mcif`` files the same way (unparseable files reported).
* :func:`site_descriptors` — all-layer site embeddings and the CrystalNN fingerprint of every site,
  through the benchmark's cached descriptor zoo; featurization failures are added to the failures.
* :func:`coordination_labels` — CrystalNN coordination number and best-matching motif of every site.
* :func:`separation_scores` — for every single layer ``l`` and every cumulative layer set ``0..l``, how well
  the embeddings separate elements and motifs: k-NN accuracy under cross-validation grouped by material,
  and silhouette score.
* figures: :func:`plot_separation`, :func:`plot_site_maps` (t-SNE, or UMAP when ``umap-learn`` is
  installed), :func:`plot_cosine_similarity`; :func:`run_analysis` does it all (``ssl-featurizer magnetism``).

Usage (needs ``../shared/data``)::

    from ssl_featurizer.bench.magnetism import run_analysis
    result = run_analysis("magnetism_out", subset="kong2023")
    result["scores"].head()
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_featurizer.bench.tasks import Task, load_task

#: ``subset`` argument → site task of :mod:`ssl_featurizer.bench.tasks`
SUBSETS = {"all": "magndata_site_moments", "ordered": "magndata_site_moments_ordered",
           "kong2023": "magndata_site_moments_kong2023"}
_FAILURE_COLUMNS = ["id", "site_index", "stage", "kind", "reason"]


@dataclass
class MagneticSites:
    """Magnetic sites of MAGNDATA structures, their moment sizes and what was left out.

    Attributes:
        task: the benchmark site task (``(structure, site_index)`` inputs, ``|m|`` targets, material groups).
        table: one row per task input: ``id``, ``site_index``, ``element``, ``magmom`` (``|m|`` in μB).
        failures: one row per source row or site that could not be used, with ``id``, ``site_index``,
            ``stage`` (``load``, ``embedding`` or ``crystalnn``), ``kind`` and ``reason``.
    """

    task: Task
    table: pd.DataFrame
    failures: pd.DataFrame

    def __len__(self) -> int:
        return len(self.table)


def load_site_moments(subset: str = "ordered", data_dir: str | Path | None = None, max_sites: int | None = None,
                      seed: int = 0) -> MagneticSites:
    """The MAGNDATA site-moment task with a table of its sites and of everything left out.

    Args:
        subset: ``"all"`` (20,528 sites), ``"ordered"`` (sites of structures without partial occupancies,
            which the encoder requires) or ``"kong2023"`` (the sites labelled by Kong et al.).
        data_dir: the shared ``data`` folder (default: ``$SSL_FEATURIZER_SHARED/data`` or ``../shared/data``).
        max_sites: keep a random set of whole materials totalling about this many sites.
        seed: seed of that random choice.

    Raises:
        ValueError: unknown ``subset``.
        FileNotFoundError: the shared data files are absent.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset={subset!r}; choose from {sorted(SUBSETS)}")
    task = load_task(SUBSETS[subset], data_dir)
    if max_sites is not None:
        task = task.subset(max_sites, seed=seed)
    table = pd.DataFrame({
        "id": np.asarray(task.groups, dtype=str),
        "site_index": [int(k) for _, k in task.inputs],
        "element": [_main_element(s[int(k)].species) for s, k in task.inputs],
        "magmom": task.y,
    })
    failures = pd.DataFrame([{**f, "stage": "load"} for f in task.failures], columns=_FAILURE_COLUMNS)
    return MagneticSites(task, table, failures)


def _main_element(species: Any) -> str:
    """Symbol of the species with the largest occupancy on a site (the element of an ordered site)."""
    return str(getattr(max(species.items(), key=lambda kv: kv[1])[0], "symbol", "")) if len(species) else ""


def _kind(reason: str) -> str:
    """A short category of a failure reason: numbers removed, first clause only."""
    import re

    return re.sub(r"\d+(\.\d+)?", "N", reason.split(";")[0].split(" (")[0])[:60]


def read_magnetic_cifs(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse magnetic CIF (``.mcif``) files with pymatgen, reporting every file that fails and why.

    Each file gives its first structure as the full magnetic cell (``primitive=False``), with the
    site property ``magmom``. A file is reported (not dropped) when pymatgen raises, returns no structure,
    or returns placeholder (non-element) species.

    Args:
        paths: files; the id of a file is its name without the suffix.

    Returns:
        ``(structures, failures)``: a DataFrame with ``id``, ``structure`` and ``n_magnetic_sites``, and
        one with ``id``, ``path`` and ``reason``.
    """
    from pymatgen.core.periodic_table import DummySpecies
    from pymatgen.io.cif import CifParser

    rows, failures = [], []
    for path in map(Path, paths):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = CifParser(str(path)).parse_structures(primitive=False)
            if not parsed:
                raise ValueError("no structure in the file")
            structure = parsed[0]
            dummies = sorted({str(sp) for sp in structure.composition if isinstance(sp, DummySpecies)})
            if dummies:
                raise ValueError(f"placeholder species {dummies} (not chemical elements)")
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types; each becomes a reported reason
            failures.append({"id": path.stem, "path": str(path), "reason": f"{type(exc).__name__}: {exc}"})
            continue
        moments = structure.site_properties.get("magmom", [None] * len(structure))
        n_magnetic = sum(m is not None and float(np.linalg.norm(np.asarray(m, dtype=float))) > 0 for m in moments)
        rows.append({"id": path.stem, "structure": structure, "n_magnetic_sites": n_magnetic})
    return (pd.DataFrame(rows, columns=["id", "structure", "n_magnetic_sites"]),
            pd.DataFrame(failures, columns=["id", "path", "reason"]))


def site_descriptors(sites: MagneticSites, model: str = "default", cache_dir: str | Path | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """All-layer SSL site embeddings and CrystalNN fingerprints of the task's sites (cached, reused by bench).

    Sites whose embedding or fingerprint failed keep NaN rows; they are appended to ``sites.failures``
    (stage ``embedding`` or ``crystalnn``) with the featurizer's reason.

    Args:
        sites: from :func:`load_site_moments`.
        model: pretrained model name or directory.
        cache_dir: the descriptor cache of :mod:`ssl_featurizer.bench.descriptors` (e.g. ``benchmarks/cache``).

    Returns:
        ``(embeddings, crystalnn, width)``: ``(n_sites, (n_layers + 1) * width)`` layer embeddings ordered
        layer by layer, the ``(n_sites, 61)`` CrystalNN fingerprint (matminer ``ops`` preset), and the
        embedding width per layer.
    """
    from ssl_featurizer.bench.descriptors import compute
    from ssl_featurizer.models.registry import load_model

    loaded = load_model(model)
    all_layers = "".join(str(k) for k in range(loaded.n_layers + 1))
    emb, _ = compute(f"ssl_site:{all_layers}", sites.task, cache_dir, model)
    cnn, _ = compute("crystalnn_site", sites.task, cache_dir, model)
    new = []
    for stage, x in (("embedding", emb), ("crystalnn", cnn)):
        bad = np.flatnonzero(np.isnan(x).any(axis=1))
        if len(bad):
            reasons = _failure_reasons(stage, [sites.task.inputs[i] for i in bad], model)
            new += [{"id": sites.table["id"].iat[i], "site_index": int(sites.table["site_index"].iat[i]),
                     "stage": stage, "kind": _kind(reason), "reason": reason}
                    for i, reason in zip(bad, reasons)]
    if new:
        sites.failures = pd.concat([sites.failures, pd.DataFrame(new, columns=_FAILURE_COLUMNS)], ignore_index=True)
    return emb, cnn, loaded.width


def _failure_reasons(stage: str, pairs: list, model: str) -> list[str]:
    """The featurizer's own reason for each failed site (failures are few: recomputing them is cheap)."""
    if stage == "embedding":
        from ssl_featurizer.featurizers.site import SSLSiteFeaturizer

        rows = SSLSiteFeaturizer(model=model, layers="0").featurize_many(pairs, ignore_errors=True,
                                                                         return_errors=True, pbar=False)
    else:
        from matminer.featurizers.site import CrystalNNFingerprint

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = CrystalNNFingerprint.from_preset("ops").featurize_many(
                [(s, int(k)) for s, k in pairs], ignore_errors=True, return_errors=True, pbar=False)
    return [str(row[-1]).strip() if isinstance(row[-1], str) else "no reason given (NaN features)" for row in rows]


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


def layer_sets(n_layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """``("single", (l,))`` for every layer and ``("cumulative", (0, ..., l))`` for every depth."""
    single = [("single", (k,)) for k in range(n_layers + 1)]
    cumulative = [("cumulative", tuple(range(k + 1))) for k in range(n_layers + 1)]
    return single + cumulative


def _columns(layers: Sequence[int], width: int) -> np.ndarray:
    return np.concatenate([np.arange(k * width, (k + 1) * width) for k in layers])


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
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, silhouette_score
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
        for mode, layers in layer_sets(n_layers):
            base = {"label": name, "mode": mode, "layers": "".join(map(str, layers)), "depth": max(layers),
                    "n_sites": len(use), "n_classes": len(kept)}
            if len(kept) < 2 or n_groups < 2:
                rows.append({**base, "knn_accuracy": np.nan, "knn_accuracy_std": np.nan,
                             "knn_balanced_accuracy": np.nan, "chance": np.nan, "silhouette": np.nan})
                continue
            x = embeddings[np.ix_(use, _columns(layers, width))]
            x = (x - x.mean(0)) / (x.std(0) + 1e-12)
            acc, bal, chance = [], [], []
            folds = StratifiedGroupKFold(min(n_splits, n_groups), shuffle=True, random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # classes rarer than n_splits
                for tr, te in folds.split(x, yk, gk):
                    pred = KNeighborsClassifier(min(k, len(tr))).fit(x[tr], yk[tr]).predict(x[te])
                    acc.append(accuracy_score(yk[te], pred))
                    bal.append(balanced_accuracy_score(yk[te], pred))
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
def plot_separation(scores: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """k-NN accuracy (with chance level) and silhouette against layer depth, single layers and cumulative sets."""
    from ssl_featurizer.plotting import save_figure, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = dict(zip(dict.fromkeys(scores["label"]), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    for (label, mode), block in scores.groupby(["label", "mode"], sort=False):
        block = block.sort_values("depth")
        style = "-o" if mode == "single" else "--s"
        axes[0].plot(block["depth"], block["knn_accuracy"], style, color=colours[label], label=f"{label}, {mode}")
        axes[1].plot(block["depth"], block["knn_balanced_accuracy"], style, color=colours[label])
        axes[2].plot(block["depth"], block["silhouette"], style, color=colours[label])
        if mode == "single":
            axes[0].axhline(block["chance"].mean(), color=colours[label], lw=0.8, ls=":")
    depth = int(scores["depth"].max())
    for ax, ylabel in zip(axes, ("k-NN accuracy (grouped CV)", "k-NN balanced accuracy", "silhouette score")):
        ax.set_xticks(range(depth + 1))
        ax.set_xlabel("layer l (single: h_l; cumulative: h_0..h_l)")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7)
    axes[0].set_title("dotted: majority-class accuracy", fontsize=8)
    return save_figure(fig, path, title, dpi=120)


def _top_classes(values: Sequence[Any], n: int) -> np.ndarray:
    s = pd.Series(list(values), dtype=object).fillna("none").astype(str)
    top = s.value_counts().index[:n]
    return np.where(s.isin(top), s, "other")


def embed_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """A 2-D map of standardised features: sklearn t-SNE, or UMAP (``method="umap"``, needs ``umap-learn``).

    Raises:
        ImportError: ``method="umap"`` without ``umap-learn``.
        ValueError: unknown method.
    """
    x = (x - x.mean(0)) / (x.std(0) + 1e-12)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    if method == "umap":
        import umap  # optional extra

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
    raise ValueError(f"method={method!r}; use 'tsne' or 'umap'")


def plot_site_maps(embeddings: np.ndarray, colourings: Mapping[str, Sequence[Any]], path: str | Path,
                   layer_sets: Sequence[str] = ("0", "2", "5"), width: int = 64, method: str = "tsne",
                   max_points: int = 3000, n_classes: int = 10, seed: int = 0, title: str = "") -> Path:
    """2-D maps (t-SNE or UMAP) of site embeddings: one row per layer set, one column per colouring.

    Args:
        embeddings: all-layer embeddings; rows with NaN are left out.
        colourings: name → label per site (e.g. element, motif); the ``n_classes`` commonest get colours,
            the rest are grey ("other").
        path: PNG file.
        layer_sets: layer strings (``"2"`` = layer 2 alone, ``"012"`` = concatenated).
        width: features per layer.
        method: ``"tsne"`` or ``"umap"``.
        max_points: random sample of sites mapped.
        n_classes: coloured classes per colouring.
        seed: sample and map seed.
        title: figure title.
    """
    from ssl_featurizer.plotting import save_figure, pyplot

    plt = pyplot()
    ok = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(ok, min(max_points, len(ok)), replace=False))
    names = list(colourings)
    fig, axes = plt.subplots(len(layer_sets), len(names), figsize=(6.2 * len(names), 4.8 * len(layer_sets)),
                             squeeze=False)
    classes = {n: _top_classes(np.asarray(list(colourings[n]), dtype=object)[pick], n_classes) for n in names}
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    for r, layers in enumerate(layer_sets):
        xy = embed_2d(embeddings[np.ix_(pick, _columns([int(c) for c in layers], width))], method, seed)
        for c, name in enumerate(names):
            ax, lab = axes[r, c], classes[name]
            order = [v for v in pd.Series(lab).value_counts().index if v != "other"]
            if (lab == "other").any():
                m = lab == "other"
                ax.scatter(xy[m, 0], xy[m, 1], s=3, c="lightgrey", label="other", rasterized=True)
            for i, v in enumerate(order):
                m = lab == v
                ax.scatter(xy[m, 0], xy[m, 1], s=3, color=cmap(i % cmap.N), label=v, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"layers {layers}, coloured by {name}", fontsize=9)
            if r == 0:
                ax.legend(fontsize=6, markerscale=3, loc="best", ncol=2)
    return save_figure(fig, path, title or f"{method.upper()} of {len(pick)} magnetic sites", dpi=110)


def cosine_pairs(embeddings: np.ndarray, table: pd.DataFrame, layers: str = "012", width: int = 64,
                 n_random_pairs: int = 50_000, max_pairs_per_material: int = 100, seed: int = 0) -> pd.DataFrame:
    """Cosine similarity of standardised site embeddings for pairs of magnetic sites.

    Pairs of distinct sites within each material (all of them, or a random ``max_pairs_per_material``, so
    that large magnetic cells do not dominate), and ``n_random_pairs`` random pairs from different
    materials, each with ``same_material``, ``same_element`` and ``abs_moment_difference`` (|m| difference, μB).
    """
    ok = np.flatnonzero(~np.isnan(embeddings).any(axis=1))
    x = embeddings[np.ix_(ok, _columns([int(c) for c in layers], width))]
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


def plot_cosine_similarity(embeddings: np.ndarray, table: pd.DataFrame, path: str | Path, layers: str = "012",
                           width: int = 64, seed: int = 0, title: str = "") -> tuple[Path, pd.DataFrame]:
    """Within- versus between-material cosine similarity of magnetic sites, and one material's matrix.

    Left: histograms of the cosine similarity (standardised embeddings of ``layers``) for four kinds of
    pairs (same/different material × same/different element; at most 100 pairs per material). Middle:
    within-material pairs, share with equal moment sizes (``|Δ|m|| ≤ 0.1`` μB) per cosine-similarity bin
    (bins with at least 20 pairs). Right: the similarity matrix of the material (≤ 40 magnetic sites, two
    elements or more if any) whose sites have the most distinct embeddings, labelled element, index and |m|.

    Returns:
        ``(path, summary)``: summary has one row per pair kind with count, mean, median cosine, the share
        of pairs above 0.99 and the share with equal moment sizes (``|Δ|m|| ≤ 0.1`` μB).
    """
    from ssl_featurizer.plotting import save_figure, pyplot

    plt = pyplot()
    pairs = cosine_pairs(embeddings, table, layers, width, seed=seed)
    kind = np.where(pairs["same_material"], "same material", "different materials") + ", " + np.where(
        pairs["same_element"], "same element", "different element")
    pairs = pairs.assign(kind=kind)
    summary = pairs.groupby("kind")["cosine"].agg(pairs="size", mean="mean", median="median")
    summary["share_above_0.99"] = pairs.groupby("kind")["cosine"].apply(lambda c: float((c > 0.99).mean()))
    summary["equal_moment_share"] = pairs.groupby("kind")["abs_moment_difference"].apply(
        lambda d: float((d <= 0.1).mean()))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), gridspec_kw={"width_ratios": [1.2, 1, 1.1]})
    bins = np.linspace(-1, 1, 81)
    for name, block in pairs.groupby("kind"):
        axes[0].hist(block["cosine"], bins=bins, density=True, histtype="step", lw=1.5, label=f"{name} ({len(block)})")
    axes[0].set_xlabel(f"cosine similarity (standardised layers {layers})")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=7, loc="upper left")
    within = pairs[pairs["same_material"]]
    if len(within):
        cut = pd.cut(within["cosine"], np.linspace(-1, 1, 21))
        share = within.groupby(cut, observed=True)["abs_moment_difference"].agg(
            share=lambda d: float((d <= 0.1).mean()), n="size")
        share = share[share["n"] >= 20]
        axes[1].plot([iv.mid for iv in share.index], share["share"], "o-")
        for iv, row in share.iterrows():
            axes[1].annotate(str(int(row["n"])), (iv.mid, row["share"]), fontsize=6, xytext=(0, 4),
                             textcoords="offset points", ha="center")
    axes[1].set_ylim(0, 1.05)
    axes[1].set_xlabel("cosine similarity of two magnetic sites of one material (label: pairs)")
    axes[1].set_ylabel("share of pairs with | |m_i| − |m_j| | ≤ 0.1 μB")
    ok = ~np.isnan(embeddings).any(axis=1)
    t = table[ok].reset_index(drop=True)
    e = embeddings[ok][:, _columns([int(c) for c in layers], width)]
    distinct = pd.Series({mid: len(np.unique(np.round(e[rows.to_numpy()], 4), axis=0))
                          for mid, rows in pd.Series(t.index).groupby(t["id"].to_numpy())})
    per = t.groupby("id").agg(n=("element", "size"), n_el=("element", "nunique")).assign(distinct=distinct)
    per = per[per["n"] <= 40]
    if len(per):
        mixed = per[per["n_el"] >= 2]
        choice = (mixed if len(mixed) else per)["distinct"].idxmax()
        idx = np.flatnonzero(t["id"].to_numpy() == choice)
        x = (e[idx] - e.mean(0)) / (e.std(0) + 1e-12)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
        im = axes[2].imshow(x @ x.T, cmap="RdBu_r", vmin=-1, vmax=1)
        names = [f"{e}{k} {m:.2f}" for e, k, m in zip(t["element"].iloc[idx], t["site_index"].iloc[idx],
                                                        t["magmom"].iloc[idx])]
        axes[2].set_xticks(range(len(idx)), names, rotation=90, fontsize=5)
        axes[2].set_yticks(range(len(idx)), names, fontsize=5)
        axes[2].set_title(f"MAGNDATA {choice}: site (index) |m| in μB", fontsize=9)
        fig.colorbar(im, ax=axes[2], fraction=0.046)
    return save_figure(fig, path, title, dpi=120), summary.reset_index()


def run_analysis(out: str | Path, subset: str = "ordered", max_sites: int | None = None, model: str = "default",
                 cache_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 map_points: int = 3000, map_layers: Sequence[str] = ("0", "2", "5"), cosine_layers: str = "012",
                 min_class_size: int = 20, min_class_groups: int = 5, umap: bool = True, seed: int = 0,
                 progress: bool = True) -> dict[str, Any]:
    """The whole magnetism analysis, written to ``out``.

    Files: ``sites.csv`` (sites with element, |m|, CN, motif), ``failures.csv`` (every left-out row or site
    and why), ``separation.csv`` + ``separation.png``, ``tsne.png`` (and ``umap.png`` when ``umap-learn``
    is importable and ``umap`` is true), ``cosine.png`` + ``cosine.csv``, ``run.json`` (sizes, wall times).

    Args:
        out: output folder.
        subset: ``all``, ``ordered`` or ``kong2023`` (see :func:`load_site_moments`).
        max_sites: random set of whole materials totalling about this many sites.
        model: pretrained model.
        cache_dir: descriptor cache shared with ``ssl-featurizer bench`` (none: computed in memory).
        data_dir: shared data folder.
        map_points: sites shown in the t-SNE/UMAP maps.
        map_layers: layer sets of the map rows.
        cosine_layers: layer set of the cosine-similarity figure.
        min_class_size: see :func:`separation_scores`.
        min_class_groups: see :func:`separation_scores`.
        umap: also draw UMAP maps if ``umap-learn`` is installed (skipped otherwise, noted in ``run.json``).
        seed: seed of subsets, folds, samples and maps.
        progress: print the stages to stderr.

    Returns:
        dict with ``sites`` (:class:`MagneticSites`), ``labels``, ``scores``, ``cosine`` and ``files``.
    """
    import sys

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    walls: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        walls[name] = round(time.perf_counter() - t0, 1)
        if progress:
            print(f"magnetism: {name} done in {walls[name]} s", file=sys.stderr)

    t0 = time.perf_counter()
    sites = load_site_moments(subset, data_dir, max_sites, seed)
    stage("load", t0)
    t0 = time.perf_counter()
    emb, cnn, width = site_descriptors(sites, model, cache_dir)
    stage("descriptors", t0)
    labels = coordination_labels(cnn)
    table = pd.concat([sites.table, labels], axis=1)
    el, cn = table["element"].to_numpy(dtype=object), table["cn"].to_numpy()
    classes = input_element_classes(list(el), model)
    table["input_class"] = classes
    label_sets: dict[str, Any] = {"element": el, "element (input classes)": classes,
                                  "motif": table["motif"].to_numpy(dtype=object),
                                  "CN": np.where(cn > 0, cn.astype(str), None)}
    for element in pd.Series(el).value_counts().index[:2]:  # motif with the element held fixed
        label_sets[f"motif ({element} sites)"] = np.where(el == element, table["motif"].to_numpy(dtype=object), None)
    table.to_csv(out / "sites.csv", index=False)
    sites.failures.to_csv(out / "failures.csv", index=False)
    t0 = time.perf_counter()
    scores = separation_scores(emb, label_sets, sites.table["id"].to_numpy(), width,
                               min_class_size=min_class_size, min_class_groups=min_class_groups, seed=seed)
    scores.to_csv(out / "separation.csv", index=False)
    files = [plot_separation(scores, out / "separation.png",
                             f"what the site embeddings separate ({len(sites)} magnetic sites, {subset})")]
    stage("separation", t0)
    colourings = {"element": el, "motif": table["motif"].to_numpy(dtype=object)}
    n_layers = emb.shape[1] // width - 1
    map_layers = [m for m in map_layers if max(int(c) for c in m) <= n_layers]
    methods = ["tsne"]
    notes = []
    if umap:
        try:
            import umap as _umap  # noqa: F401 - optional extra, probed only
            methods.append("umap")
        except ImportError:
            notes.append("UMAP skipped: umap-learn is not installed (pip install umap-learn)")
    for method in methods:
        t0 = time.perf_counter()
        files.append(plot_site_maps(emb, colourings, out / f"{method}.png", map_layers, width, method,
                                    map_points, seed=seed))
        stage(method, t0)
    t0 = time.perf_counter()
    path, cosine = plot_cosine_similarity(emb, sites.table, out / "cosine.png", cosine_layers, width, seed)
    cosine.to_csv(out / "cosine.csv", index=False)
    files.append(path)
    stage("cosine", t0)
    failures_by = (sites.failures.groupby(["stage", "kind"]).size().rename("count").reset_index().to_dict("records")
                   if len(sites.failures) else [])
    (out / "run.json").write_text(json.dumps({
        "task": sites.task.name, "subset": subset, "n_sites": len(sites), "n_materials": int(table["id"].nunique()),
        "n_failures": len(sites.failures), "failures_by_stage_and_kind": failures_by, "model": model,
        "notes": [*sites.task.notes, *notes], "wall_seconds": walls}, indent=1, default=str))
    return {"sites": sites, "labels": table, "scores": scores, "cosine": cosine, "files": files}
