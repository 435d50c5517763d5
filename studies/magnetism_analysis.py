"""The project's magnetism study on MAGNDATA: the site-moment task's sites and the whole analysis, written to files.

Built on the library's site analysis (:mod:`ssl_featurizer.site_analysis`); the data are the project's
(:mod:`project_tasks`, ``../shared/data``). ``python studies/magnetism.py analysis`` runs :func:`run_analysis`
on every site of ordered structures; the docs page (docs/magnetism.md) is generated from its files.

Usage (needs ``../shared/data``)::

    import sys; sys.path.insert(0, "studies")
    from magnetism_analysis import run_analysis
    result = run_analysis("magnetism_out", subset="kong2023")
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from project_tasks import load_task

from ssl_featurizer.site_analysis import (
    MagneticSites,
    coordination_labels,
    input_element_classes,
    plot_cosine_similarity,
    plot_separation,
    plot_site_maps,
    separation_scores,
    site_descriptors,
)

#: ``subset`` argument → site task of :mod:`project_tasks`
SUBSETS = {"all": "magndata_site_moments", "ordered": "magndata_site_moments_ordered",
           "kong2023": "magndata_site_moments_kong2023"}


def load_site_moments(subset: str = "ordered", data_dir: str | Path | None = None, max_sites: int | None = None,
                      seed: int = 0) -> MagneticSites:
    """The MAGNDATA site-moment task with a table of its sites and of everything left out.

    Args:
        subset: ``"all"`` (20,528 sites), ``"ordered"`` (sites of structures without partial occupancies,
            which the encoder requires) or ``"kong2023"`` (the sites labelled by Kong et al.).
        data_dir: the shared ``data`` folder (default: ``$SSL_FEATURIZER_SHARED/data`` or ``../shared/data``).
        max_sites: keep a random set of whole materials totalling about this many sites (drawn from the site
            table before decoding, so only their structures are read; sites the subset leaves out, e.g. those of
            partially occupied structures for ``"ordered"``, are not replaced).
        seed: seed of that random choice.

    Raises:
        ValueError: unknown ``subset``.
        FileNotFoundError: the shared data files are absent.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset={subset!r}; choose from {sorted(SUBSETS)}")
    task = load_task(SUBSETS[subset], data_dir, limit=max_sites, seed=seed)
    return MagneticSites.from_task(task)


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

    from ssl_featurizer.models.registry import load_model

    model = load_model(model).name  # resolved once: every stage below and run.json name the same model
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
