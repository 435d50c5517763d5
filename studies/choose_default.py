"""Which shipped model is the default? Decided on development tasks that are not benchmark tasks.

Every candidate (and, as references, the authors' two checkpoints when ``../shared/anchors/kong2023`` is present)
is scored with the quality gate's rule — layer set × pooling chosen per split by the kernel ridge inner CV on the
training rows (:mod:`ssl_featurizer.bench.selection`), then the full-grid test MAE — on the recipe study's
development tasks: MP-2018 (MEGNet) formation energy and PBE band gap of ``--n-dev`` structures of the
JARVIS-Leaderboard *train* split, none of which matches a benchmark structure by id or by structure
(``studies/project_tasks.py:dev_task``, ``studies/overlap.py``), 3 random 80/20 splits. The candidate
with the lower mean MAE relative to the first candidate, averaged over both targets, becomes the default; the
visible tasks of the quality gate play no part in the choice.

Writes ``docs/figures/default_choice.csv`` and the table between the ``choice`` markers of docs/pretraining.md.

    python studies/choose_default.py --candidates cgcnn-ssl-mp2025@1.2,cgcnn-ssl-mp2025@2.0

A candidate not yet shipped is given as ``label=path/to/model_dir``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from common import ResultRows, script_parser
from docs_blocks import picks, write_block
from project_tasks import anchors_dir, dev_task, shared_data_dir

from ssl_featurizer.bench.protocol import splits
from ssl_featurizer.bench.selection import candidate_features, select_on_splits, selected

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "figures" / "default_choice.csv"


def score(models: dict[str, str], n_dev: int, cache_dir: Path) -> pd.DataFrame:
    """Selected-candidate test MAE per (target, model, split); resumable through ``OUT``."""
    results = ResultRows(OUT)
    done = results.done("target", "model")
    todo = [(t, m) for t in ("e_form", "gap_pbe") for m in models if (t, m) not in done]
    if not todo:
        return results.frame()
    tasks = dev_task(n_dev)
    for target, label in todo:
        task = tasks[target]
        candidates = candidate_features(task, models[label], cache_dir=str(cache_dir))
        picked = [(name, selected(rows)) for name, _, _, rows in select_on_splits(candidates, task, splits(task, 3))]
        results.add({"target": target, "model": label, "split": name, "spec": p["spec"], "test_mae": p["test_mae"]}
                    for name, p in picked)
        print(f"{target} {label} done", flush=True)
    return results.frame()


def decide(results: pd.DataFrame, candidates: list[str]) -> tuple[str, pd.DataFrame]:
    """The candidate with the lowest mean MAE relative to the first candidate (averaged over targets)."""
    mean = results.groupby(["target", "model"]).test_mae.mean().unstack("target")
    relative = (mean / mean.loc[candidates[0]]).mean(axis=1)
    return str(relative.loc[candidates].idxmin()), mean.assign(relative=relative)


def write_docs(table: pd.DataFrame, results: pd.DataFrame, chosen: str, n_dev: int,
               page: Path = ROOT / "docs" / "pretraining.md") -> None:
    """The choice table (mean ± std per target, picks per model; the chosen default in bold) into ``page``."""
    std = results.groupby(["target", "model"]).test_mae.std().unstack("target")
    picked = results.groupby("model").spec.agg(picks)
    lines = ["| model | MP-2018 e_form MAE (eV/atom) | MP-2018 PBE gap MAE (eV) | relative to the first | picks |",
             "|---|---|---|---|---|"]
    for model, r in table.iterrows():
        mark = "**" if model == chosen else ""
        lines.append(f"| {mark}{model}{mark} | {r['e_form']:.4f} ± {std.loc[model, 'e_form']:.4f} | "
                     f"{r['gap_pbe']:.4f} ± {std.loc[model, 'gap_pbe']:.4f} | {r['relative']:.3f} | "
                     f"{picked.loc[model]} |")
    lines.append(f"\n{n_dev:,} development structures, 3 random 80/20 splits (kong2023-*: the authors' checkpoints, "
                 f"scored as references, never candidates); chosen default: **{chosen}**.")
    write_block(page, "choice", "\n".join(lines))


def main() -> None:
    parser = script_parser(__doc__, cache_dir=True)
    parser.add_argument("--candidates", required=True,
                        help="comma-separated model names or label=model_dir (the first is the baseline)")
    parser.add_argument("--n-dev", type=int, default=2000)
    args = parser.parse_args()
    if not shared_data_dir().is_dir():
        raise SystemExit(f"{shared_data_dir()} is absent: the choice needs the corpus and the MP-2018 labels")
    models = dict(c.split("=", 1) if "=" in c else (c, c) for c in args.candidates.split(","))
    candidates = list(models)
    for label, file in (("kong2023-pred", "cgcnn_60k_pred.pth"), ("kong2023-contra", "cgcnn_60k_contra.pth")):
        if (anchors_dir() / file).is_file():  # references only: never candidates
            models[label] = f"kong2023:{anchors_dir() / file}"
    results = score(models, args.n_dev, Path(args.cache_dir))
    chosen, table = decide(results, candidates)
    print(table.round(4).to_string())
    print(f"default: {chosen}")
    write_docs(table, results, chosen, args.n_dev)


if __name__ == "__main__":
    main()
