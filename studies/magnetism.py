"""Regenerate the magnetism page: site-moment benchmarks, separation analysis, figures, tables.

Run from the repo root (``../shared/data`` must exist)::

    python studies/magnetism.py bench      # site-moment benchmarks (heavy; resumable: features cached in studies/cache)
    python studies/magnetism.py analysis   # separation scores, t-SNE/UMAP maps, cosine similarity (uses the cache)
    python studies/magnetism.py docs       # tables and figures into docs/magnetism.md and docs/figures
    python studies/magnetism.py            # all three

Results: ``studies/results/magndata_site_moments_*`` (benchmark protocol outputs) and
``studies/results/magnetism_analysis`` (``run_analysis`` outputs).
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pandas as pd
from common import script_parser
from docs_blocks import replace_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "studies" / "results"
CACHE = ROOT / "studies" / "cache"
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
    from project_tasks import load_task

    from ssl_featurizer.bench import run_benchmark

    for folder, (task_name, limit, descriptors, regressors) in RUNS.items():
        if names and folder not in names:
            continue
        task = load_task(task_name)
        if limit:
            task = task.subset(limit, seed=0)
        print(f"{folder}: {len(task)} sites, {len(descriptors)} descriptors, {regressors}", flush=True)
        run_benchmark(task, descriptors, regressors, seeds=3, out=RESULTS / folder, cache_dir=CACHE)


def analysis(out: str | Path = ANALYSIS, subset: str = "ordered", max_sites: int | None = None,
             model: str = "default", cache_dir: str | Path | None = CACHE, min_class_size: int = 20,
             min_class_materials: int = 5, umap: bool = True, data_dir: str | Path | None = None) -> None:
    """Separation scores and figures (default: every site of ordered structures, into the page's results)."""
    from magnetism_analysis import run_analysis

    result = run_analysis(out, subset=subset, max_sites=max_sites, model=model, cache_dir=cache_dir,
                          data_dir=data_dir, min_class_size=min_class_size, min_class_groups=min_class_materials,
                          umap=umap)
    best = result["scores"].sort_values("knn_accuracy", ascending=False).groupby("label", sort=False).head(1)
    print(f"{len(result['sites'])} magnetic sites, {len(result['sites'].failures)} left out (failures.csv)")
    print(best[["label", "mode", "layers", "knn_accuracy", "chance", "silhouette"]].to_string(index=False))
    print("wrote " + ", ".join(str(f) for f in result["files"]))


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
        return f"*(not run yet: `python studies/magnetism.py bench` → studies/results/{folder})*"
    meta = json.loads(run.read_text())
    text = (RESULTS / folder / "summary.md").read_text()
    return (f"{meta['n_rows']:,} sites; splits {', '.join(meta['splits'])} (grouped by material); "
            f"wall time {meta['wall_seconds'] / 60:.1f} min. Notes: {'; '.join(meta['notes']) or 'none'}.\n\n{text}\n"
            f"![MAE by descriptor](../studies/results/{folder}/mae.png)\n")


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


def main(argv: list[str] | None = None) -> None:
    """The page's stages: ``bench [NAMES]``, ``analysis [options]``, ``docs``, or all three (no stage)."""
    cli = script_parser(__doc__)
    stages = cli.add_subparsers(dest="stage")
    p = stages.add_parser("bench", help="site-moment benchmarks")
    p.add_argument("names", nargs="*", help=f"results folders to run (default: all of {', '.join(RUNS)})")
    # the shared --cache-dir comes with a parent parser (whose -h then serves this one)
    p = stages.add_parser("analysis", help="separation scores, t-SNE/UMAP maps, cosine similarity (PNG + CSV)",
                          parents=[script_parser(None, cache_dir=True)], add_help=False)
    p.add_argument("--out", default=str(ANALYSIS), help="output folder (default: the page's results)")
    p.add_argument("--subset", default="ordered", choices=["all", "ordered", "kong2023"],
                   help="all sites, sites of ordered structures, or Kong et al.'s labelled sites")
    p.add_argument("--max-sites", type=int, default=None, help="random whole materials totalling about N sites")
    p.add_argument("--model", default="default", help="pretrained model (default: the registry's default)")
    p.add_argument("--min-class-size", type=int, default=20, help="smallest class scored")
    p.add_argument("--min-class-materials", type=int, default=5, help="fewest materials of a scored class")
    p.add_argument("--no-umap", action="store_true", help="skip UMAP maps even if umap-learn is installed")
    p.add_argument("--data-dir", default=None, help="shared data folder (default: ../shared/data)")
    stages.add_parser("docs", help="tables and figures into docs/magnetism.md and docs/figures")
    args = cli.parse_args(argv)
    if args.stage in (None, "bench"):
        bench(getattr(args, "names", None) or None)
    if args.stage in (None, "analysis"):
        if args.stage is None:
            analysis()
        else:
            analysis(args.out, args.subset, args.max_sites, args.model, args.cache_dir, args.min_class_size,
                     args.min_class_materials, not args.no_umap, args.data_dir)
    if args.stage in (None, "docs"):
        docs()


if __name__ == "__main__":
    main()
