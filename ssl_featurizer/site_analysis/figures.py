"""Figures of the site analysis: separation by depth, t-SNE / UMAP maps, cosine similarity of site pairs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ssl_featurizer.site_analysis.scores import cosine_pairs, layer_columns


def plot_separation(scores: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """k-NN accuracy (with chance level) and silhouette against layer depth, single layers and cumulative sets."""
    from ssl_featurizer.plotting import pyplot, save_figure

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
    from ssl_featurizer.plotting import pyplot, save_figure

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
        xy = embed_2d(embeddings[np.ix_(pick, layer_columns([int(c) for c in layers], width))], method, seed)
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
    from ssl_featurizer.plotting import pyplot, save_figure

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
    e = embeddings[ok][:, layer_columns([int(c) for c in layers], width)]
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


