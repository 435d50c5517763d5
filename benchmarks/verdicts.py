"""The headline verdicts: each family's configuration chosen on training rows only, compared pairwise.

For every task and outer split (2 × 5-fold CV; matbench tasks: the 5 official folds; site tasks grouped by
material), every family of :mod:`ssl_featurizer.bench.families` picks one configuration (descriptor variant ×
regressor, from menus declared in code before the run) by inner cross-validation on the split's training rows
(:mod:`ssl_featurizer.bench.selection`); only that configuration is scored on the test rows. Families are compared
pairwise by the corrected resampled t-test (:mod:`ssl_featurizer.bench.stats`): "A wins" needs a lower mean MAE and
p < 0.05, anything else is a tie.

Resumable: features are cached (``--cache-dir``, chunked for the slow descriptors), and every finished (task,
family, split) is a row of ``<out>/<task>/<family>.csv``, reused while the family's menu, model and splits are the
same. A family whose declared menu cannot be built in full (a descriptor skipped with ``--skip`` or an optional
extra missing) is run on what there is, and the tables mark it "incomplete" and give it no verdict.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/verdicts.py --tasks kong2023_formation_energy \\
        --families ssl,authors,handbuilt,peer --skip ofm,site_stats_crystalnn --docs
    python benchmarks/verdicts.py --docs-only      # rewrite the docs blocks from the results on disk
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from docs_blocks import picks, write_block

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "verdicts"
TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
         "magndata_site_moments_kong2023", "magndata_transition_temperature", "matbench_dielectric")
#: tasks that are further targets of another task's material set (counted once)
SAME_SET = {"kong2023_log_gvrh": "kong2023_log_kvrh"}
COMPARISONS = (("ssl", "handbuilt"), ("ssl", "authors"), ("ssl", "peer"), ("ssl_inductive", "authors"),
               ("ssl_inductive", "peer"))
#: how the tables name the families on the left of a comparison
LABELS = {"ssl": "ours", "ssl_inductive": "ours (inductive control)"}
#: the families the gate compares ours against, as the gate table names them
OPPONENTS = {"authors": "authors' checkpoints (nested)", "peer": "CHGNet features (nested)"}
GATE_TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
              "magndata_site_moments_kong2023", "matbench_dielectric")


def gate_summary(scores: dict[tuple[str, str], list[tuple[str, dict]]]) -> str:
    """The model goal, counted: against the authors' checkpoints, wins at p < 0.05 (and how many by ≥ 10 % lower
    mean MAE) and significant losses; against CHGNet, wins — on the gate tasks that have finished."""
    from ssl_featurizer.bench.families import family_model

    lines = []
    for a in LABELS:
        auth = [(t, c) for t, c in scores[a, "authors"] if t in GATE_TASKS]
        peer = [(t, c) for t, c in scores[a, "peer"] if t in GATE_TASKS]
        if not auth and not peer:
            continue
        wins = [c for _, c in auth if c["verdict"] == f"{a} wins"]
        big = [c for c in wins if c["diff"] <= -0.1 * c["mean_b"]]
        losses = [t for t, c in auth if c["verdict"] == "authors wins"]
        peer_wins = [t for t, c in peer if c["verdict"] == f"{a} wins"]
        peer_losses = [t for t, c in peer if c["verdict"] == "peer wins"]
        lines.append(f"- **{LABELS[a]}** (`{family_model(a)}`), on {len(auth)} of {len(GATE_TASKS)} gate tasks "
                     f"finished against the authors' checkpoints: {len(wins)} win(s) at p < 0.05, {len(big)} of them "
                     f"by ≥ 10 % lower mean MAE; {len(losses)} significant loss(es)"
                     + (f" ({', '.join(losses)})" if losses else "")
                     + f". Against the peer encoders ({len(peer)} finished): {len(peer_wins)} win(s), {len(peer_losses)} "
                     f"loss(es)" + (f" ({', '.join(peer_losses)})" if peer_losses else "") + ".")
    goal = ("Goal of the default model: beat the better of the authors' checkpoints on ≥ 4 of the 6 gate tasks at "
            "p < 0.05 with ≥ 10 % lower mean MAE and no significant loss, and beat CHGNet's features on ≥ 4 of 6.")
    return "\n".join([goal, "", *lines]) if lines else goal + " No gate task has finished yet."


def menu_id(variants: list[str], regressors: tuple[str, ...], model: str) -> str:
    """Identity of a family's menu on a task: results are reused only for the same variants, regressors, model."""
    return hashlib.sha256(json.dumps([variants, list(regressors), model]).encode()).hexdigest()[:12]


def run_family(task, family: str, split_list: list, cache_dir: Path, skip: tuple[str, ...], out: Path,
               featurize_only: bool) -> None:
    """Score one family on every outer split of ``task`` not yet on disk (one CSV row per split)."""
    from ssl_featurizer.bench.families import build_menu, declared_menu, family_model, regressor_menu
    from ssl_featurizer.bench.selection import select_on_splits, selected

    t0 = time.perf_counter()
    menu, missing = build_menu(family, task, cache_dir, skip)
    print(f"{task.name} {family}: {len(menu)} of {len(declared_menu(family, task.level))} variants "
          f"({time.perf_counter() - t0:.0f} s featurization)" + (f"; missing {missing}" if missing else ""),
          flush=True)
    if featurize_only or not len(menu):
        return
    regressors = regressor_menu(task.y, task.groups is not None)
    model = family_model(family)
    mid = menu_id(list(menu), regressors, model)
    path = out / task.name / f"{family}.csv"
    inner_path = out / task.name / f"{family}__inner.csv"
    rows = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=["menu_id", "split"])
    rows = rows[rows.menu_id == mid]
    inner = pd.read_csv(inner_path) if inner_path.exists() else pd.DataFrame(columns=["menu_id", "split"])
    inner = inner[inner.menu_id == mid]
    todo = [split for split in split_list if split[0] not in set(rows.split)]
    t1 = time.perf_counter()
    for name, tr, te, scored in select_on_splits(menu, task, todo, regressors):
        chosen = selected(scored)
        new = {"task": task.name, "family": family, "model": model, "menu_id": mid, "split": name,
               "spec": chosen["spec"], "regressor": chosen["regressor"], "inner_mae": chosen["inner_mae"],
               "test_mae": chosen["test_mae"], "rmse": chosen["rmse"], "r2": chosen["r2"],
               "best_params": chosen["best_params"], "n_train": len(tr), "n_test": len(te),
               "n_variants": len(menu), "n_regressors": len(regressors), "missing": " | ".join(missing),
               "seconds": round(time.perf_counter() - t1, 1)}
        rows = pd.concat([rows, pd.DataFrame([new])], ignore_index=True)
        inner = pd.concat([inner, pd.DataFrame([{"menu_id": mid, "split": name, "spec": r["spec"],
                                                 "regressor": r["regressor"], "inner_mae": r["inner_mae"],
                                                 "selected": r["selected"]} for r in scored])], ignore_index=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(path, index=False)
        inner.to_csv(inner_path, index=False)
        print(f"  {task.name} {family} {name}: {new['spec']} / {new['regressor']} test MAE {new['test_mae']:.4g} "
              f"({new['seconds']:.0f} s)", flush=True)
        t1 = time.perf_counter()  # the next split's selection starts now


def load_results(out: Path) -> pd.DataFrame:
    """Every per-split row on disk (the current menu of each family and task only: the last menu_id written, and
    only for the family's current model, so that a new default never shows its predecessor's rows)."""
    from ssl_featurizer.bench.families import family_model

    frames = []
    for path in sorted(out.glob("*/*.csv")):
        if path.stem.endswith("__inner"):
            continue
        df = pd.read_csv(path)
        if len(df) and family_model(path.stem):
            df = df[df.model == family_model(path.stem)]
        if len(df):
            frames.append(df[df.menu_id == df.menu_id.iloc[-1]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def compare(results: pd.DataFrame, task: str, a: str, b: str, n_splits: int) -> dict | None:
    """Paired comparison of families ``a`` and ``b`` on ``task`` (None unless both ran every split)."""
    from ssl_featurizer.bench.stats import corrected_ttest, verdict

    block = results[results.task == task]
    per = {f: block[block.family == f].set_index("split") for f in (a, b)}
    if any(len(p) < n_splits for p in per.values()):
        return None
    common = per[a].index.intersection(per[b].index)
    diff = per[a].loc[common, "test_mae"] - per[b].loc[common, "test_mae"]
    t, p = corrected_ttest(diff, per[a].loc[common, "n_train"].mean(), per[a].loc[common, "n_test"].mean())
    ma, mb = per[a].loc[common, "test_mae"].mean(), per[b].loc[common, "test_mae"].mean()
    complete = all(not isinstance(m, str) or not m for m in (per[a].missing.iloc[0], per[b].missing.iloc[0]))
    return {"diff": diff.mean(), "diff_std": diff.std(), "t": t, "p": p, "mean_a": ma, "mean_b": mb,
            "verdict": verdict(a, ma, b, mb, p) if complete else "no verdict (incomplete menu)"}


def _missing_components(missing: str) -> str:
    parts = {m.split(": ", 1)[1].split(" ")[0] for m in missing.split(" | ") if ": " in m}
    return ", ".join(sorted(parts))


def tables(results: pd.DataFrame, n_splits: dict[str, int]) -> tuple[str, str, str]:
    """Markdown: (per-task detail for docs/benchmarks.md, authors-only table for docs/kong2023.md, README lines)."""
    from ssl_featurizer.bench.families import FAMILIES, family_model
    from ssl_featurizer.models.registry import DEFAULT_MODEL

    lines, gate, counts = [], [], {c: [] for c in COMPARISONS}
    scores: dict[tuple[str, str], list[tuple[str, dict]]] = {(a, b): [] for a in LABELS for b in OPPONENTS}
    head = ["| task | " + " | ".join(f"{LABELS[a]} vs {b}" for a, b in COMPARISONS) + " |", "|---" * (len(COMPARISONS) + 1)
            + "|"]
    for task in dict.fromkeys(results.task):
        block = results[results.task == task]
        n = n_splits.get(task, block.split.nunique())
        lines += [f"#### {task}", "", (f"{n} outer splits ({', '.join(sorted(block.split.unique())[:3])}, …), "
                  f"{int(block.n_train.mean()):,} training / {int(block.n_test.mean()):,} test rows per split."), "",
                  ("| family | menu | test MAE (mean ± std) | splits | selection + fit time | "
                  "chosen configuration per split |"), "|---|---|---|---|---|---|"]
        for family in FAMILIES:
            f = block[block.family == family]
            if f.empty:
                lines.append(f"| {family} | not run | — | 0/{n} | — | — |")
                continue
            missing = f.missing.iloc[0] if isinstance(f.missing.iloc[0], str) else ""
            menu = (f"{int(f.n_variants.iloc[0])} variants × {int(f.n_regressors.iloc[0])} regressors"
                    + (f", **incomplete: {_missing_components(missing)} pending**" if missing else ""))
            label = f"{family} ({f.model.iloc[0]})" if isinstance(f.model.iloc[0], str) and f.model.iloc[0] else family
            lines.append(f"| {label} | {menu} | {f.test_mae.mean():.4g} ± {f.test_mae.std():.2g} | {len(f)}/{n} | "
                         f"{f.seconds.sum() / 60:.0f} min | {picks(f.spec + ' / ' + f.regressor)} |")
        lines += ["", "| comparison (A − B) | paired difference (mean ± std) | corrected p | verdict |",
                  "|---|---|---|---|"]
        cells: dict[tuple[str, str], str] = {}
        pairs = [*COMPARISONS, *((a, b) for i, a in enumerate(FAMILIES) for b in FAMILIES[i + 1:]
                                 if (a, b) not in COMPARISONS and (b, a) not in COMPARISONS)]
        for a, b in pairs:
            c = compare(results, task, a, b, n)
            if c is None:
                if (a, b) in COMPARISONS:
                    done = [int((block.family == f).sum()) for f in (a, b)]
                    cells[a, b] = f"pending ({a} {done[0]}/{n}, {b} {done[1]}/{n} splits)"
                continue
            lines.append(f"| {a} − {b} | {c['diff']:+.4g} ± {c['diff_std']:.2g} | {c['p']:.3g} | {c['verdict']} |")
            if (a, b) in COMPARISONS:
                cells[a, b] = f"{c['verdict']} (p = {c['p']:.2g})"
                counts[a, b].append((task, c["verdict"]))
        head.append(f"| {task} | " + " | ".join(cells[c] for c in COMPARISONS) + " |")
        lines.append("")
        for a in ("ssl", "ssl_inductive"):
            for b in ("authors", "peer"):
                c = compare(results, task, a, b, n)
                label = f"{LABELS[a]}: `{family_model(a)}` | {OPPONENTS[b]}"
                if c is not None:
                    gate.append(f"| {task} | {label} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.4g} "
                                f"({c['diff'] / c['mean_b']:+.1%}) | {c['p']:.3g} | {c['verdict']} |")
                    scores[a, b].append((task, c))
                else:
                    done = {f: block[block.family == f] for f in (a, b)}
                    gate.append(f"| {task} | {label} | " + " | ".join(
                        f"{d.test_mae.mean():.4g} ({len(d)}/{n} splits)" if len(d) else f"0/{n} splits"
                        for d in done.values()) + " | — | — | pending |")
    sets = {SAME_SET.get(t, t) for t in results.task.unique()}
    summary = [f"Default model `{DEFAULT_MODEL}`. **Its pretraining corpus contains the structures of these tasks (no "
               "labels)**, so ours is transductive here; its inductive control (`ssl_inductive`, the same recipe "
               "pretrained without any structure of these tasks) shows what that is worth. The hand-built descriptors "
               "are not transductive, the authors' "
               "checkpoints were pretrained on other structures, and CHGNet was trained on Materials Project "
               "relaxation trajectories (energies, forces, stresses, magnetic moments), which likely include many "
               f"of these materials with their DFT energies. {results.task.nunique()} task(s) on {len(sets)} material set(s) so far "
               "(log K and log G are two targets of one set and count as one)"
               + (f"; not started: {', '.join(t for t in TASKS if t not in set(results.task))}"
                  if set(TASKS) - set(results.task) else "")
               + f". Selection and fitting took {results.seconds.sum() / 3600:.1f} h of wall time (one process per "
               "family, `OMP_NUM_THREADS=1`, on a 2-core machine shared with other jobs; featurization not included, "
               "see the exploratory tables for its cost per structure).", "", *head, ""]
    readme = []
    for (a, b), found in counts.items():
        if found:
            wins = sum(v == f"{a} wins" for _, v in found)
            losses = sum(v == f"{b} wins" for _, v in found)
            open_ = sum(v.startswith("no verdict") for _, v in found)
            readme.append(f"- {LABELS[a]} vs {b}: {wins} win(s), {losses} loss(es), "
                          f"{len(found) - wins - losses - open_} tie(s)"
                          + (f", {open_} without verdict (incomplete menu)" if open_ else "")
                          + f" on {len(found)} task(s): " + ", ".join(f"{t} {v}" for t, v in found))
    gate_md = [gate_summary(scores), "", ("| task | model | against | its MAE | their MAE | difference (relative) | "
               "corrected p | verdict |"), "|---|---|---|---|---|---|---|---|", *gate]
    return "\n".join(summary + lines), "\n".join(gate_md), "\n".join(readme or ["- no comparison finished yet"])


def menus_markdown() -> str:
    """The declared menus (docs/benchmarks.md lists them; a test checks that the page and the code agree)."""
    from ssl_featurizer.bench.families import (
        BASE_REGRESSORS,
        CHECKPOINTS,
        FAMILIES,
        POSITIVE_REGRESSORS,
        declared_menu,
        family_model,
    )

    lines = ["| family | structure tasks | site tasks |", "|---|---|---|"]
    for family in FAMILIES:
        cells = []
        for level in ("structure", "site"):
            menu = declared_menu(family, level)
            if family == "authors":
                menu = declared_menu("ssl", level)
                cells.append(f"{len(menu) * len(CHECKPOINTS)}: each of " + ", ".join(f"`{c}/`" for c in CHECKPOINTS)
                             + " × " + ", ".join(f"`{v}`" for v in menu))
            elif family == "peer":
                by_encoder: dict[str, list[str]] = {}
                for v in menu:
                    encoder, _, spec = v.partition("/")
                    by_encoder.setdefault(encoder, []).append(spec)
                cells.append(f"{len(menu)}: " + "; ".join(f"`{e}/` × " + ", ".join(f"`{v}`" for v in specs)
                                                         for e, specs in by_encoder.items()))
            else:
                cells.append(f"{len(menu)}: " + ", ".join(f"`{v}`" for v in menu))
        label = f"{family} (`{family_model(family)}`)" if family in LABELS else family
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
    lines += ["", (f"Regressors, the same for every family: {', '.join(f'`{r}`' for r in BASE_REGRESSORS)}; for a "
              f"strictly positive target also {', '.join(f'`{r}`' for r in POSITIVE_REGRESSORS)}. Gradient "
              "boosting and the log ensemble are not in this menu, for cost (see `ssl_featurizer/bench/families.py`); "
              "the exploratory tables below show them.")]
    return "\n".join(lines)


def models_markdown() -> str:
    """One sentence naming the registry's default and every shipped model (README.md and docs/index.md)."""
    from ssl_featurizer.models.registry import DEFAULT_MODEL, list_models

    return (f"The default model is `{DEFAULT_MODEL}` (the registry's `DEFAULT_MODEL`, chosen on development tasks "
            "that are not benchmark tasks); shipped models: " + ", ".join(f"`{m}`" for m in list_models())
            + " — every one loadable by name.")


def write_docs(out: Path) -> None:
    """Menus, model list and (when there are results) verdict tables into docs/benchmarks.md, docs/kong2023.md,
    docs/index.md and README.md."""
    write_block(ROOT / "docs" / "benchmarks.md", "menus", menus_markdown())
    for page in (ROOT / "README.md", ROOT / "docs" / "index.md"):
        write_block(page, "models", models_markdown())
    results = load_results(out)
    if results.empty:
        print(f"no results under {out}: only the menus were written")
        return
    n_splits = {p.parent.name: json.loads(p.read_text())["n_splits"] for p in out.glob("*/splits.json")}
    detail, gate, readme = tables(results, n_splits)
    write_block(ROOT / "docs" / "benchmarks.md", "verdicts", detail)
    write_block(ROOT / "docs" / "kong2023.md", "verdicts", gate)
    write_block(ROOT / "README.md", "verdicts", readme)
    print(detail)


def main() -> None:
    from ssl_featurizer.bench.families import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip", default="", help="component descriptors not to featurize now (e.g. ofm)")
    parser.add_argument("--cache-dir", default=str(ROOT / "benchmarks" / "cache"))
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--featurize-only", action="store_true", help="fill the feature cache, score nothing")
    parser.add_argument("--docs", action="store_true", help="write the tables into docs/ and README.md")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs from results on disk")
    args = parser.parse_args()
    out = Path(args.out)
    tasks = [t for t in args.tasks.split(",") if t]
    families = [f for f in args.families.split(",") if f]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise SystemExit(f"unknown families {bad}; choose from {', '.join(FAMILIES)}")
    if not args.docs_only:
        from ssl_featurizer.bench import load_task
        from ssl_featurizer.bench.protocol import repeated_kfold

        for name in tasks:
            t0 = time.perf_counter()
            task = load_task(name)
            split_list = repeated_kfold(task, args.repeats, args.folds)
            (out / name).mkdir(parents=True, exist_ok=True)
            (out / name / "splits.json").write_text(json.dumps({"n_splits": len(split_list), "n_rows": len(task)}))
            for family in families:
                run_family(task, family, split_list, Path(args.cache_dir), tuple(args.skip.split(",")), out,
                           args.featurize_only)
            print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
    if args.docs or args.docs_only:
        write_docs(out)


if __name__ == "__main__":
    main()
