"""The gate of the distilled model: run once, on the model the development choice shipped, and published as measured.

The distilled model (``cgcnn-distilled-mp2025``: the distilled candidate of ``studies/distill_study.py`` that passed
``studies/gap_study.py``'s declared development choice; shipped only then) and its inductive control (the same
recipe with every benchmark structure left out) are scored as
two more families of the verdict benchmark (``studies/verdicts.py``): the headline ``ssl`` menu (layer sets ×
poolings, alone and ``+magpie``; site tasks ``ssl_site``), the same regressor menu, the same outer splits, each
configuration chosen on training rows only. They are compared with the families already on disk — the authors'
checkpoints, the hand-built descriptors, the peer encoders (SevenNet-0, CHGNet) and the default (``ssl``) — by the
corrected resampled t-test, Holm-adjusted over every comparison of this gate (:data:`COMPARISONS` on every task).

The goal, declared before the run: wins over the authors' checkpoints on ≥ 3 of the 5 material sets
after the adjustment (material sets counted by :data:`ssl_featurizer.bench.stats.SET_RULE`), and no significant
loss to the hand-built descriptors or the peer encoders. A distilled model inherits its teacher's label overlap:
its rows on the tasks whose labels SevenNet-0's training data contains are marked as the peer's are.

Resumable (one row per task, family and split under ``studies/results/distilled_gate/``); writes the
``distilled-gate`` block of docs/pretraining.md and the model cards' evaluation. One process per family:

    OMP_NUM_THREADS=1 python studies/distilled_gate.py --families distilled
    OMP_NUM_THREADS=1 python studies/distilled_gate.py --families distilled_inductive
    python studies/distilled_gate.py --docs-only
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import script_parser
from docs_blocks import write_block
from gap_study import DISTILLED_MODEL
from verdicts import OUT as VERDICTS
from verdicts import PEER_SEEN, SEEN_MARK, TASKS, set_tallies
from verdicts import load_results as verdict_rows

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "studies" / "results" / "distilled_gate"
PAGE = ROOT / "docs" / "pretraining.md"
#: the gate's families and the models they read (the ``ssl`` menu on each)
MODELS = {"distilled": DISTILLED_MODEL, "distilled_inductive": DISTILLED_MODEL.replace("@", "-inductive@")}
#: the opponents, as the verdict benchmark files them
OPPONENTS = {"authors": "authors' checkpoints", "handbuilt": "hand-built descriptors",
             "peer": "SevenNet-0 / CHGNet features", "ssl": "the default (2.0)"}
#: every comparison of the gate, on every task: one family of tests, Holm-adjusted together
COMPARISONS = tuple((a, b) for a in MODELS for b in OPPONENTS)
#: the declared goal: wins over the authors on at least this many material sets, no significant loss to these
GOAL_SETS, NO_LOSS_TO = 3, ("handbuilt", "peer")


def run(families: list[str], cache_dir: Path, repeats: int = 2, folds: int = 5) -> None:
    """Score ``families`` on every task (splits: the verdict benchmark's, :func:`repeated_kfold`)."""
    from project_tasks import load_task

    from ssl_featurizer.bench.comparison import run_family
    from ssl_featurizer.bench.families import build_menu, declared_menu, regressor_menu
    from ssl_featurizer.bench.protocol import repeated_kfold

    for name in TASKS:
        t0 = time.perf_counter()
        task = load_task(name)
        split_list = repeated_kfold(task, repeats, folds)
        (OUT / name).mkdir(parents=True, exist_ok=True)
        (OUT / name / "splits.json").write_text(json.dumps({"n_splits": len(split_list), "n_rows": len(task)}))
        for family in families:
            menu, missing = build_menu("ssl", task, cache_dir, model=MODELS[family])
            print(f"{name} {family}: {len(menu)} of {len(declared_menu('ssl', task.level))} variants"
                  + (f"; missing {missing}" if missing else ""), flush=True)
            run_family(task, family, menu, split_list, regressor_menu(task.y, task.groups is not None),
                       MODELS[family], missing, OUT / name, log=lambda line: print(line, flush=True))
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)


def load_rows() -> pd.DataFrame:
    """The gate's rows and the opponents' rows of the verdict benchmark (current menus)."""
    frames = []
    for path in sorted(OUT.glob("*/*.csv")):
        if not path.stem.endswith("__inner"):
            df = pd.read_csv(path)
            frames.append(df[df.menu_id == df.menu_id.iloc[-1]])
    ours = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    theirs = verdict_rows(VERDICTS)
    if theirs.empty:
        return ours
    return pd.concat([ours, theirs[theirs.family.isin(list(OPPONENTS))]], ignore_index=True)


def decided(rows: pd.DataFrame) -> list[dict]:
    """Every comparison of :data:`COMPARISONS` on every task where both families finished, Holm-adjusted together."""
    from ssl_featurizer.bench.comparison import decide, paired_comparison

    found = []
    for task in TASKS:
        split_file = OUT / task / "splits.json"
        if not split_file.exists():
            continue
        n = json.loads(split_file.read_text())["n_splits"]
        found += [c for a, b in COMPARISONS if (c := paired_comparison(rows, task, a, b, n)) is not None]
    return decide(found)


def gate_text(comparisons: list[dict]) -> str:
    """The docs block: the goal counted per family, then every comparison."""
    from ssl_featurizer.bench.stats import SET_RULE

    lines = [(f"Goal (declared before the run): wins over the authors' checkpoints on ≥ {GOAL_SETS} of the 5 material "
             "sets after the adjustment, and no significant loss to the hand-built descriptors or the peer encoders."),
             ""]
    for family, model in MODELS.items():
        mine = [c for c in comparisons if c["a"] == family]
        if not mine:
            continue
        sets = set_tallies({(c["task"], c["a"], c["b"]): c for c in mine}, list(TASKS), [(family, "authors")])
        finished = [name for name, verdict, _ in sets[family, "authors"] if verdict != "pending"]
        wins = [name for name, verdict, _ in sets[family, "authors"] if verdict == f"{family} wins"]
        losses = [f"{c['task']} ({c['b']})" for c in mine if c["b"] in NO_LOSS_TO and c["verdict"] == f"{c['b']} wins"]
        default = [c for c in mine if c["b"] == "ssl"]
        reached = len(finished) == 5 and len(wins) >= GOAL_SETS and not losses
        lines.append(f"- **{family}** (`{model}`): {len(wins)} of {len(finished)} finished material sets won against "
                     f"the authors' checkpoints; {len(losses)} significant loss(es) to hand-built or peer descriptors"
                     + (f" ({', '.join(losses)})" if losses else "")
                     + f"; against the default: {sum(c['verdict'] == f'{family} wins' for c in default)} win(s), "
                     f"{sum(c['verdict'] == 'ssl wins' for c in default)} loss(es) of {len(default)}. Goal "
                     + ("reached." if reached else "not reached." if len(finished) == 5 else "pending."))
    lines += ["", ("| task | model | against | its MAE | their MAE | difference (relative) | corrected p | "
              "Holm-adjusted p | verdict |"), "|---|---|---|---|---|---|---|---|---|"]
    for c in sorted(comparisons, key=lambda c: (TASKS.index(c["task"]), c["a"], c["b"])):
        seen = f" {SEEN_MARK}" if c["task"] in PEER_SEEN else ""
        lines.append(f"| {c['task']}{seen} | {c['a']} | {OPPONENTS[c['b']]} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | "
                     f"{c['diff']:+.4g} ({c['diff'] / c['mean_b']:+.1%}) | {c['p']:.3g} | {c['p_holm']:.3g} | "
                     f"{c['verdict']} |")
    lines += ["", (f"{len(comparisons)} comparisons, Holm–Bonferroni adjusted together; material sets counted once: "
              f"{SET_RULE}. {SEEN_MARK} Labels of this target overlap SevenNet-0's training data (MPtrj), which the "
              "distilled models inherit from their teacher. Generated by `python studies/distilled_gate.py`.")]
    return "\n".join(lines)


def main() -> None:
    cli = script_parser(__doc__, cache_dir=True)
    cli.add_argument("--families", default=",".join(MODELS), help="which of the gate's families to score")
    cli.add_argument("--docs-only", action="store_true", help="only rewrite the docs block from the rows on disk")
    args = cli.parse_args()
    families = [f for f in args.families.split(",") if f]
    if unknown := sorted(set(families) - set(MODELS)):
        raise SystemExit(f"unknown families {unknown}; declared: {list(MODELS)}")
    if not args.docs_only:
        run(families, Path(args.cache_dir))
    comparisons = decided(load_rows())
    if comparisons:
        pd.DataFrame(comparisons).to_csv(OUT / "comparisons.csv", index=False)
        write_block(PAGE, "distilled-gate", gate_text(comparisons))
        print(gate_text(comparisons))


if __name__ == "__main__":
    main()
