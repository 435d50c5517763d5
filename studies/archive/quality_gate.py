"""Quality gate of the default model against the authors' released checkpoints.

For each task and model, the layer set and pooling are chosen per outer split by the kernel ridge inner CV on
the training rows (:mod:`ssl_featurizer.bench.selection`); the selected candidate's test MAE is reported.
Resumable: one CSV per (task, model) under ``studies/results/quality_gate/``. Our models are labelled by
their registry name (``cgcnn-ssl-mp2025@1.1``), so results of earlier versions stay in the table; the verdict
column compares the current default with the authors' checkpoints only.

Archived (studies/archive/README.md): the headline comparison is now ``studies/verdicts.py``.

Run from the repo root (needs ../shared)::

    MATMINER_DATA=../shared/data/matminer python studies/archive/quality_gate.py
    python studies/archive/quality_gate.py --models cgcnn-ssl-mp2025@1.0=cgcnn-ssl-mp2025@1.0 \
        --tasks kong2023_log_kvrh
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/: the helpers below
from common import script_parser
from docs_blocks import picks, write_block
from project_tasks import anchors_dir, load_task, shared_data_dir

from ssl_featurizer.bench.protocol import splits
from ssl_featurizer.bench.selection import candidate_features, select_on_splits

ROOT = Path(__file__).resolve().parents[2]
ANCHORS = anchors_dir()
OUT = ROOT / "studies" / "results" / "quality_gate"
TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
         "magndata_site_moments_kong2023", "matbench_dielectric")
RIVALS = ("kong2023-pred", "kong2023-contra")
MODELS = {"default": "default",
          "kong2023-pred": f"kong2023:{ANCHORS / 'cgcnn_60k_pred.pth'}",
          "kong2023-contra": f"kong2023:{ANCHORS / 'cgcnn_60k_contra.pth'}"}


def run(task_name: str, label: str, model: str, seeds: int, cache_dir: Path) -> pd.DataFrame:
    path = OUT / f"{task_name}__{label}.csv"
    if path.exists():
        return pd.read_csv(path)
    task = load_task(task_name)
    t0 = time.perf_counter()
    candidates = candidate_features(task, model, cache_dir=str(cache_dir))
    rows = []
    for name, _, _, scored in select_on_splits(candidates, task, splits(task, seeds)):
        rows += [{"task": task_name, "model": label, "split": name, **row} for row in scored]
        print(f"{task_name} {label} {name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return df


def default_label() -> str:
    """Registry name of the current default model (the label its gate results are stored under)."""
    from ssl_featurizer.models.registry import resolve_model

    return resolve_model("default")[0]


def table(results: pd.DataFrame, ours: str, rivals: tuple[str, ...] = RIVALS) -> str:
    """Markdown: selected-candidate test MAE (mean ± std over splits) per task and model, and who wins.

    The last columns compare ``ours`` with the best of ``rivals`` (paired by split, mean ± std): a win whose
    paired difference is within one standard deviation of zero is marked as such. Other models (earlier
    versions of ours) are shown but take no part in the verdict.
    """
    sel = results[results.selected]
    stats = sel.groupby(["task", "model"]).test_mae.agg(["mean", "std"])
    chosen = sel.groupby(["task", "model"]).spec.agg(picks)
    models = sorted(dict.fromkeys(results.model), key=lambda m: (m != ours, m in rivals, m))
    lines = ["| task | " + " | ".join(f"**{m}** (default)" if m == ours else m for m in models)
             + " | default − best checkpoint (paired) | default wins |",
             "|---" * (len(models) + 3) + "|"]
    wins = complete = 0
    for task in dict.fromkeys(results.task):
        cells, means = [], {}
        for m in models:
            if (task, m) not in stats.index:
                cells.append("—")
                continue
            mean, std = stats.loc[(task, m)]
            means[m] = mean
            cells.append(f"{mean:.4g} ± {std:.2g}<br><sub>{chosen.loc[(task, m)]}</sub>")
        if ours not in means or any(r not in means for r in rivals):
            lines.append(f"| {task} | " + " | ".join(cells) + " | — | not run |")
            continue
        complete += 1
        other = min(rivals, key=means.get)
        per_split = sel[sel.task == task].pivot(index="split", columns="model", values="test_mae")
        diff = per_split[ours] - per_split[other]
        win = means[ours] < means[other]
        wins += win
        verdict = ("yes" if diff.mean() + diff.std() < 0 else "yes, within noise") if win else (
            "no" if diff.mean() - diff.std() > 0 else "no, within noise")
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {diff.mean():+.3g} ± {diff.std():.2g} (vs {other}) "
                     f"| {verdict} |")
    lines.append(f"\nThe default ({ours}) has a lower mean MAE than both checkpoints on {wins} of the {complete} "
                 f"tasks run ({results.task.nunique()} listed).")
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__, tasks=",".join(TASKS), seeds=True, cache_dir=True)
    parser.add_argument("--models", default=",".join(f"{k}={v}" for k, v in MODELS.items()),
                        help="comma-separated label=model pairs")
    args = parser.parse_args()
    if not shared_data_dir().is_dir():
        raise SystemExit(f"{shared_data_dir()} is absent: the quality gate needs the shared tasks")
    models = dict(pair.split("=", 1) for pair in args.models.split(","))
    # "default" means the current default under its registry name (a later default is a new column, not a rerun)
    models = {(default_label() if label == "default" else label): (default_label() if model == "default" else model)
              for label, model in models.items()}
    for task in args.tasks.split(","):
        for label, model in models.items():
            run(task, label, model, args.seeds, Path(args.cache_dir))
    # every finished (task, model) on disk joins the table, also those not asked for in this invocation
    results = pd.concat([pd.read_csv(p) for p in sorted(OUT.glob("*__*.csv"))], ignore_index=True)
    md = table(results, default_label())
    (OUT / "summary.md").write_text(md + "\n")
    write_block(ROOT / "docs" / "kong2023.md", "gate", md)
    print(md)


if __name__ == "__main__":
    main()
