"""Quality gate of the default model against the authors' released checkpoints (issue #3).

For each task and model, the layer set and pooling are chosen per outer split by the kernel ridge inner CV on
the training rows (:mod:`ssl_featurizer.bench.selection`); the selected candidate's test MAE is reported.
Resumable: one CSV per (task, model) under ``benchmarks/results/quality_gate/``.

Run from the repo root (needs ../shared)::

    MATMINER_DATA=../shared/data/matminer python benchmarks/quality_gate.py
    python benchmarks/quality_gate.py --models ours=default --tasks kong2023_log_kvrh   # a subset
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from ssl_featurizer.bench.protocol import splits
from ssl_featurizer.bench.selection import candidate_features, select_and_score
from ssl_featurizer.bench.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "anchors" / "kong2023"
OUT = ROOT / "benchmarks" / "results" / "quality_gate"
TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
         "magndata_site_moments_kong2023", "matbench_dielectric")
MODELS = {"ours": "default",
          "kong2023-pred": f"kong2023:{ANCHORS / 'cgcnn_60k_pred.pth'}",
          "kong2023-contra": f"kong2023:{ANCHORS / 'cgcnn_60k_contra.pth'}"}


def run(task_name: str, label: str, model: str, seeds: int, n_jobs: int, cache_dir: Path) -> pd.DataFrame:
    path = OUT / f"{task_name}__{label}.csv"
    if path.exists():
        return pd.read_csv(path)
    task = load_task(task_name)
    t0 = time.perf_counter()
    candidates = candidate_features(task, model, cache_dir=str(cache_dir))
    rows = []
    for name, tr, te in splits(task, seeds):
        seed = int("".join(c for c in name if c.isdigit()) or 0)
        for row in select_and_score(candidates, task.y, tr, te, seed, task.groups, n_jobs=n_jobs):
            rows.append({"task": task_name, "model": label, "split": name, **row})
        print(f"{task_name} {label} {name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def table(results: pd.DataFrame, ours: str = "ours") -> str:
    """Markdown: selected-candidate test MAE (mean ± std over splits) per task and model, and who wins."""
    sel = results[results.selected]
    stats = sel.groupby(["task", "model"]).test_mae.agg(["mean", "std"])
    picks = sel.groupby(["task", "model"]).spec.agg(lambda s: ", ".join(f"{k}×{v}" for k, v in
                                                                        s.value_counts().items()))
    models = list(dict.fromkeys(results.model))
    lines = ["| task | " + " | ".join(models) + " | ours wins |", "|---" * (len(models) + 2) + "|"]
    wins = 0
    for task in dict.fromkeys(results.task):
        cells, means = [], {}
        for m in models:
            if (task, m) not in stats.index:
                cells.append("—")
                continue
            mean, std = stats.loc[(task, m)]
            means[m] = mean
            cells.append(f"{mean:.4g} ± {std:.2g}<br><sub>{picks.loc[(task, m)]}</sub>")
        win = ours in means and len(means) == len(models) and all(means[ours] < v for k, v in means.items()
                                                                   if k != ours)
        wins += win
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {'yes' if win else 'no'} |")
    lines.append(f"\nOurs wins {wins} of {results.task.nunique()} tasks (lower MAE than every other model).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default=",".join(f"{k}={v}" for k, v in MODELS.items()),
                        help="comma-separated label=model pairs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--cache-dir", default=str(ROOT / "benchmarks" / "cache"))
    args = parser.parse_args()
    if not (ROOT.parent / "shared" / "data").is_dir():
        raise SystemExit("../shared/data is absent: the quality gate needs the shared tasks")
    models = dict(pair.split("=", 1) for pair in args.models.split(","))
    frames = [run(t, label, model, args.seeds, args.n_jobs, Path(args.cache_dir))
              for t in args.tasks.split(",") for label, model in models.items()]
    results = pd.concat(frames, ignore_index=True)
    md = table(results)
    (OUT / "summary.md").write_text(md + "\n")
    page = ROOT / "docs" / "kong2023.md"
    head, rest = page.read_text().split("<!-- gate:start -->\n")
    page.write_text(head + "<!-- gate:start -->\n" + md + "\n" + rest[rest.index("<!-- gate:end -->"):])
    print(md)


if __name__ == "__main__":
    main()
