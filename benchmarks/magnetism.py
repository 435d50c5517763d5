"""Regenerate the magnetism page: site-moment benchmarks, separation analysis, figures, tables.

Run from the repo root (``../shared/data`` must exist)::

    python benchmarks/magnetism.py bench      # site-moment benchmarks (heavy; resumable: features cached in benchmarks/cache)
    python benchmarks/magnetism.py analysis   # separation scores, t-SNE/UMAP maps, cosine similarity (uses the cache)
    python benchmarks/magnetism.py docs       # tables and figures into docs/magnetism.md and docs/figures
    python benchmarks/magnetism.py            # all three

Results: ``benchmarks/results/magndata_site_moments_*`` (benchmark protocol outputs) and
``benchmarks/results/magnetism_analysis`` (``run_analysis`` outputs).
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pandas as pd
from docs_blocks import replace_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / "cache"
ANALYSIS = RESULTS / "magnetism_analysis"
PAGE = ROOT / "docs" / "magnetism.md"
FIGURES = ROOT / "docs" / "figures"

SSL = [f"ssl_site:{'012345'[:k]}" for k in range(1, 7)]
HAND = ["element_site", "crystalnn_site", "crystalnn_site+element_site"]
OPSITE = ["opsite", "opsite+element_site"]
BOTH = ["ssl_site:012+element_site", "ssl_site:012+crystalnn_site+element_site"]
KRR_SITES = 5000  # KRR's grid on the full task (15k training rows) does not fit the 2-core budget

#: results folder → (task, row limit or None, descriptors, regressors)
RUNS = {
    "magndata_site_moments_kong2023": ("magndata_site_moments_kong2023", None, SSL + HAND + OPSITE + BOTH,
                                       ("krr", "gbr")),
    "magndata_site_moments_ordered_5k": ("magndata_site_moments_ordered", KRR_SITES, SSL + HAND + OPSITE + BOTH,
                                         ("krr", "gbr")),
    "magndata_site_moments_ordered": ("magndata_site_moments_ordered", None, SSL + HAND + BOTH, ("gbr",)),
}


def bench(names: list[str] | None = None) -> None:
    """Run the site-moment benchmarks (3 grouped 80/20 splits each)."""
    from ssl_featurizer.bench import load_task, run_benchmark

    for folder, (task_name, limit, descriptors, regressors) in RUNS.items():
        if names and folder not in names:
            continue
        task = load_task(task_name)
        if limit:
            task = task.subset(limit, seed=0)
        print(f"{folder}: {len(task)} sites, {len(descriptors)} descriptors, {regressors}", flush=True)
        run_benchmark(task, descriptors, regressors, seeds=3, out=RESULTS / folder, cache_dir=CACHE)


def analysis() -> None:
    """Separation scores and figures on all sites of ordered structures."""
    from ssl_featurizer.bench.magnetism import run_analysis

    run_analysis(ANALYSIS, subset="ordered", cache_dir=CACHE)


def _block(text: str, name: str, body: str) -> str:
    return replace_block(text, name, body, PAGE)


def _separation_table(scores: pd.DataFrame) -> str:
    labels = list(dict.fromkeys(scores["label"]))
    lines = ["| layers | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    s = scores.set_index(["mode", "layers", "label"])
    for mode in ("single", "cumulative"):
        for layers in dict.fromkeys(scores.loc[scores["mode"] == mode, "layers"]):
            if mode == "cumulative" and len(layers) == 1:
                continue  # h0..h0 is h0
            cells = []
            for lab in labels:
                r = s.loc[(mode, layers, lab)]
                cells.append(f"{r['knn_accuracy']:.3f} / {r['knn_balanced_accuracy']:.3f} / {r['silhouette']:.2f}")
            name = f"h{layers}" if mode == "single" else f"h0..h{layers[-1]}"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    first = scores.drop_duplicates("label").set_index("label")
    lines.append("| *majority class* | " + " | ".join(f"{first.loc[lab, 'chance']:.3f}" for lab in labels) + " |")
    lines.append("| *sites / classes* | " + " | ".join(
        f"{int(first.loc[lab, 'n_sites'])} / {int(first.loc[lab, 'n_classes'])}" for lab in labels) + " |")
    return "\n".join(lines)


def _bench_block(folder: str) -> str:
    run = RESULTS / folder / "run.json"
    if not run.exists():
        return f"*(not run yet: `python benchmarks/magnetism.py bench` → benchmarks/results/{folder})*"
    meta = json.loads(run.read_text())
    text = (RESULTS / folder / "summary.md").read_text()
    return (f"{meta['n_rows']:,} sites; splits {', '.join(meta['splits'])} (grouped by material); "
            f"wall time {meta['wall_seconds'] / 60:.1f} min. Notes: {'; '.join(meta['notes']) or 'none'}.\n\n{text}\n"
            f"![MAE by descriptor](../benchmarks/results/{folder}/mae.png)\n")


def docs() -> None:
    """Copy the figures into docs/figures and fill the generated blocks of docs/magnetism.md."""
    text = PAGE.read_text()
    meta = json.loads((ANALYSIS / "run.json").read_text())
    for name in ("separation", "tsne", "umap", "cosine"):
        if (ANALYSIS / f"{name}.png").exists():
            shutil.copyfile(ANALYSIS / f"{name}.png", FIGURES / f"magnetism_{name}.png")
    scores = pd.read_csv(ANALYSIS / "separation.csv", dtype={"layers": str})
    text = _block(text, "separation", _separation_table(scores))
    cos = pd.read_csv(ANALYSIS / "cosine.csv").rename(columns={"share_above_0.99": "share"})
    text = _block(text, "cosine", "| pairs of magnetic sites | pairs | mean cosine | median | share > 0.99 | "
                  "share with equal \\|m\\| (±0.1 μB) |\n|---|---|---|---|---|---|\n" + "\n".join(
                      f"| {r.kind} | {r.pairs:,} | {r.mean:.3f} | {r.median:.3f} | {r.share:.3f} | "
                      f"{r.equal_moment_share:.3f} |" for r in cos.itertuples()))
    sites = pd.read_csv(ANALYSIS / "sites.csv", dtype={"id": str})
    fails = pd.read_csv(ANALYSIS / "failures.csv", dtype={"id": str})
    by = (fails.groupby(["stage", "kind"]).agg(rows=("id", "size"), materials=("id", "nunique")).reset_index()
          if len(fails) else pd.DataFrame(columns=["stage", "kind", "rows", "materials"]))
    text = _block(text, "failures", f"Analysis set: {meta['n_sites']:,} sites of {meta['n_materials']:,} "
                  f"materials ({meta['task']}).\n\n| stage | kind | site rows | materials |\n|---|---|---|---|\n"
                  + "\n".join(f"| {r.stage} | {r.kind} | {r.rows:,} | {r.materials:,} |" for r in by.itertuples()))
    motifs = sites["motif"].value_counts().head(8)
    elements = sites["element"].value_counts().head(8)
    text = _block(text, "labels", "Commonest elements: " + ", ".join(f"{k} {v:,}" for k, v in elements.items())
                  + ".\n\nCommonest motifs: " + ", ".join(f"{k} {v:,}" for k, v in motifs.items()) + ".")
    for folder in RUNS:
        text = _block(text, folder, _bench_block(folder))
    text = _block(text, "magndata_transition_temperature", _bench_block("magndata_transition_temperature")
                  .replace(" sites;", " structures;").replace(" (grouped by material)", ""))
    walls = ", ".join(f"{k} {v:.0f} s" for k, v in meta["wall_seconds"].items())
    text = _block(text, "machine", f"Generated on {platform.machine()} Linux, Python {platform.python_version()}, "
                  f"2 shared CPU cores, no GPU. Analysis wall times: {walls}. "
                  f"Notes: {'; '.join(meta['notes']) or 'none'}.")
    PAGE.write_text(text)
    print(f"updated {PAGE}")


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cli.add_argument("stage", nargs="?", choices=("bench", "analysis", "docs", "all"), default="all")
    cli.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments of the bench stage")
    parsed = cli.parse_args()
    stages = ["bench", "analysis", "docs"] if parsed.stage == "all" else [parsed.stage]
    for stage_name in stages:
        if stage_name == "bench":
            bench(parsed.bench_args or None)
        else:
            {"analysis": analysis, "docs": docs}[stage_name]()
