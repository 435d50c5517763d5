"""Figures (matplotlib, headless): descriptor maps and similarity matrices, and the two helpers every figure of
the package and its benchmarks is drawn with (:func:`pyplot`, :func:`save_figure`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, title: str, dpi: int) -> Path:
    """Give ``fig`` its title and a tight layout, save it as a PNG at ``path``, close it; returns the path."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def plot_descriptor_overview(features: np.ndarray, names: Sequence[str], path: str | Path,
                             title: str = "") -> Path:
    """Save a two-panel PNG: PCA map of the structures, and their cosine-similarity matrix.

    Args:
        features: ``(n_structures, n_features)``, finite.
        names: one label per structure.
        path: output file (PNG).
        title: figure title.
    """
    plt = pyplot()
    x = (features - features.mean(0)) / (features.std(0) + 1e-12)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    xy = x @ vt[:2].T
    unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
    sim = unit @ unit.T
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6.5), gridspec_kw={"width_ratios": [1, 1.15]})
    ax1.scatter(xy[:, 0], xy[:, 1], c=np.arange(len(names)), cmap="tab20", s=40)
    for (px, py), name in zip(xy, names):
        ax1.annotate(name, (px, py), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax1.set_xlabel("PC 1")
    ax1.set_ylabel("PC 2")
    ax1.set_title("structures in descriptor space (PCA of standardised features)")
    im = ax2.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1)
    ax2.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax2.set_yticks(range(len(names)), names, fontsize=6)
    ax2.set_title("cosine similarity of standardised descriptors")
    fig.colorbar(im, ax=ax2, fraction=0.046)
    return save_figure(fig, path, title, dpi=130)


def plot_training_history(history_csv: str | Path, path: str | Path, title: str = "") -> Path:
    """Save the pretraining curves of a run's ``history.csv``: losses and held-out masked accuracies."""
    import pandas as pd

    plt = pyplot()
    h = pd.read_csv(history_csv)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(h["epoch"], h["train_loss"], "o-", label="train (mean since last point)")
    ax1.plot(h["epoch"], h["val_loss"], "s-", label="held-out")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("summed cross-entropy")
    ax1.legend()
    for col in [c for c in h.columns if c.startswith("val_") and c.endswith("_acc")]:
        ax2.plot(h["epoch"], h[col], "o-", label=col[4:-4])
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("held-out masked accuracy")
    ax2.set_ylim(0, 1)
    ax2.legend()
    return save_figure(fig, path, title, dpi=120)
