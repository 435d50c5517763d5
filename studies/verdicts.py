"""The headline verdicts: each family's configuration chosen on training rows only, compared pairwise.

For every task and outer split (2 × 5-fold CV; matbench tasks: the 5 official folds; site tasks grouped by
material), every family of :mod:`ssl_featurizer.bench.families` picks one configuration (descriptor variant ×
regressor, from menus declared in code before the run) by inner cross-validation on the split's training rows
(:mod:`ssl_featurizer.bench.selection`); only that configuration is scored on the test rows. Families are compared
pairwise by the corrected resampled t-test (:mod:`ssl_featurizer.bench.stats`); the p-values of every comparison
the tables show (every pair of families on every task) are one family of tests, Holm–Bonferroni adjusted: "A wins"
needs a lower mean MAE and an adjusted p < 0.05, anything else is a tie. Material sets are counted once
(:data:`MATERIAL_SETS`, tallied by :data:`ssl_featurizer.bench.stats.SET_RULE`).

This script is a thin caller of :mod:`ssl_featurizer.bench.comparison`, the functions behind ``compare()`` and
``ssl-featurizer bench`` (one mechanism): it adds the project's tasks, the five families and the docs blocks.

Resumable: features are cached (``--cache-dir``, chunked for the slow descriptors), and every finished (task,
family, split) is a row of ``<out>/<task>/<family>.csv``, reused while the family's menu, model and splits are the
same. A family whose declared menu cannot be built in full (a descriptor skipped with ``--skip`` or an optional
extra missing) is run on what there is, and the tables mark it "incomplete" and give it no verdict.

    OMP_NUM_THREADS=1 nice -n 10 python studies/verdicts.py --tasks kong2023_formation_energy \\
        --families ssl,authors,handbuilt,peer --skip ofm,site_stats_crystalnn --docs
    python studies/verdicts.py --docs-only      # rewrite the docs blocks from the results on disk
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import script_parser
from docs_blocks import picks, write_block
from project_tasks import SITE_TASKS, anchors_dir

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "studies" / "results" / "verdicts"
TASKS = ("kong2023_formation_energy", "kong2023_hse_gap", "kong2023_log_kvrh", "kong2023_log_gvrh",
         "magndata_site_moments_kong2023", "magndata_transition_temperature", "matbench_dielectric")
#: the material set of each task (a set of materials is counted once, whatever the number of its targets): log K
#: and log G are two targets of one set; MAGNDATA's site moments and transition temperatures share 1,086 of their
#: 1,089 materials
MATERIAL_SETS = {"kong2023_formation_energy": "kong2023 formation energy", "kong2023_hse_gap": "kong2023 HSE gap",
                 "kong2023_log_kvrh": "kong2023 elastic (log K, log G)",
                 "kong2023_log_gvrh": "kong2023 elastic (log K, log G)",
                 "magndata_site_moments_kong2023": "MAGNDATA (site moments, transition temperature)",
                 "magndata_transition_temperature": "MAGNDATA (site moments, transition temperature)",
                 "matbench_dielectric": "matbench dielectric"}
COMPARISONS = (("ssl", "handbuilt"), ("ssl", "authors"), ("ssl", "peer"), ("ssl_inductive", "handbuilt"),
               ("ssl_inductive", "authors"), ("ssl_inductive", "peer"))
#: how the tables name the families on the left of a comparison
LABELS = {"ssl": "ours", "ssl_inductive": "ours (inductive control)"}
#: the families the gate compares ours against, as the gate table names them
OPPONENTS = {"authors": "authors' checkpoints (nested)", "peer": "SevenNet-0 / CHGNet features (nested)"}
#: tasks whose labels overlap what the peer encoders were trained on (their cards' ``label_overlap``: MPtrj
#: energies, and stresses of the same calculations): a peer result there is counted like any other, and marked
PEER_SEEN = {"kong2023_formation_energy": "MPtrj energies", "kong2023_log_kvrh": "MPtrj stresses",
             "kong2023_log_gvrh": "MPtrj stresses"}
SEEN_MARK = "‡"
#: marks a README cell whose verdict rests on rows scored with an earlier declared menu (:func:`earlier_menus`)
EARLIER_MARK = "§"
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
        wins = [c for _, c in auth if c["verdict"] == f"{a} wins"]  # verdicts on Holm-adjusted p
        big = [c for c in wins if c["diff"] <= -0.1 * c["mean_b"]]
        losses = [t for t, c in auth if c["verdict"] == "authors wins"]
        peer_wins = [t for t, c in peer if c["verdict"] == f"{a} wins"]
        peer_losses = [t for t, c in peer if c["verdict"] == "peer wins"]
        lines.append(f"- **{LABELS[a]}** (`{family_model(a)}`), on {len(auth)} of {len(GATE_TASKS)} gate tasks "
                     f"finished against the authors' checkpoints: {len(wins)} win(s) at adjusted p < 0.05, {len(big)} of them "
                     f"by ≥ 10 % lower mean MAE; {len(losses)} significant loss(es)"
                     + (f" ({', '.join(losses)})" if losses else "")
                     + f". Against the peer encoders ({len(peer)} finished): {len(peer_wins)} win(s), {len(peer_losses)} "
                     f"loss(es)" + (f" ({', '.join(peer_losses)})" if peer_losses else "") + ".")
    goal = ("Goal of the default model: beat the better of the authors' checkpoints on ≥ 4 of the 6 gate tasks at "
            "p < 0.05 with ≥ 10 % lower mean MAE and no significant loss, and beat CHGNet's features on ≥ 4 of 6 "
            "(p: Holm-adjusted over every comparison of the verdict tables).")
    return "\n".join([goal, "", *lines]) if lines else goal + " No gate task has finished yet."


def run_family(task, family: str, split_list: list, cache_dir: Path, skip: tuple[str, ...], out: Path,
               featurize_only: bool) -> None:
    """Score one family on every outer split of ``task`` not yet on disk (one CSV row per split), by
    :func:`ssl_featurizer.bench.comparison.run_family`."""
    from ssl_featurizer.bench.comparison import run_family as score_family
    from ssl_featurizer.bench.families import build_menu, declared_menu, family_model, regressor_menu

    t0 = time.perf_counter()
    menu, missing = build_menu(family, task, cache_dir, skip, anchors=anchors_dir())
    print(f"{task.name} {family}: {len(menu)} of {len(declared_menu(family, task.level))} variants "
          f"({time.perf_counter() - t0:.0f} s featurization)" + (f"; missing {missing}" if missing else ""),
          flush=True)
    if featurize_only or not len(menu):
        return
    regressors = regressor_menu(task.y, task.groups is not None)
    score_family(task, family, menu, split_list, regressors, family_model(family), missing, out / task.name,
                 log=lambda line: print(line, flush=True))


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


def earlier_menus(results: pd.DataFrame) -> dict[str, list[str]]:
    """``{family: [tasks]}`` whose rows on disk were scored with a menu other than the one declared now (a complete
    menu whose id is not the current declaration's, with either regressor menu): their verdicts are the earlier
    menu's until the family is rerun."""
    from ssl_featurizer.bench.comparison import menu_id
    from ssl_featurizer.bench.families import declared_menu, family_model

    found: dict[str, list[str]] = {}
    if not {"menu_id", "missing"} <= set(results.columns):
        return found
    for (task, family), rows in results.groupby(["task", "family"], sort=False):
        if rows.missing.fillna("").astype(str).str.len().gt(0).any():
            continue  # an incomplete menu has no verdict anyway
        level = "site" if task in SITE_TASKS else "structure"
        model = family_model(family)
        current = {menu_id(declared_menu(family, level), regs, model) for regs in (("krr",), ("krr", "krr_log"))}
        if rows.menu_id.iloc[-1] not in current:
            found.setdefault(family, []).append(task)
    return found


def all_comparisons(results: pd.DataFrame, n_splits: dict[str, int]) -> dict[tuple[str, str, str], dict]:
    """Every comparison the tables show — each pair of families on each task where both finished — with its verdict:
    one family of tests, Holm-adjusted together (:func:`ssl_featurizer.bench.comparison.decide`).

    Returns:
        ``{(task, a, b): comparison}`` (keys in table order: :data:`COMPARISONS` first, then the other pairs).
    """
    from ssl_featurizer.bench.comparison import decide, paired_comparison

    found = []
    for task in dict.fromkeys(results.task):
        n = n_splits.get(task, results[results.task == task].split.nunique())
        for a, b in table_pairs():
            c = paired_comparison(results, task, a, b, n)
            if c is not None:
                found.append(c)
    return {(c["task"], c["a"], c["b"]): c for c in decide(found)}


def table_pairs() -> list[tuple[str, str]]:
    """The pairs of families the tables compare: :data:`COMPARISONS`, then every other pair."""
    from ssl_featurizer.bench.families import BENCHMARK_FAMILIES

    return [*COMPARISONS, *((a, b) for i, a in enumerate(BENCHMARK_FAMILIES) for b in BENCHMARK_FAMILIES[i + 1:]
                            if (a, b) not in COMPARISONS and (b, a) not in COMPARISONS)]


def set_tallies(decided: dict[tuple[str, str, str], dict], tasks: list[str] | None = None,
                pairs: Sequence[tuple[str, str]] = COMPARISONS) -> dict[tuple[str, str], list[tuple[str, str, list[str]]]]:
    """Per comparison of ``pairs`` (default :data:`COMPARISONS`), one verdict per material set (:func:`ssl_featurizer.bench.stats.
    set_verdict`): ``{(a, b): [(set, verdict, [task verdicts]), ...]}``. A set of which one of ``tasks`` (the tasks
    with results) has no finished comparison yet is ``"pending"``: a set's verdict never rests on part of it."""
    from ssl_featurizer.bench.stats import set_verdict

    out: dict[tuple[str, str], list[tuple[str, str, list[str]]]] = {}
    for a, b in pairs:
        by_set: dict[str, list[str]] = {}
        for (task, ca, cb), c in decided.items():
            if (ca, cb) == (a, b):
                by_set.setdefault(MATERIAL_SETS.get(task, task), []).append(f"{task} {c['verdict']}")
        unfinished = {MATERIAL_SETS.get(t, t) for t in tasks or () if (t, a, b) not in decided}
        out[a, b] = [(name, "pending" if name in unfinished else set_verdict([v.split(" ", 1)[1] for v in found],
                                                                             a, b), found)
                     for name, found in by_set.items()]
    return out


def _missing_components(missing: str) -> str:
    parts = {m.split(": ", 1)[1].split(" ")[0] for m in missing.split(" | ") if ": " in m}
    return ", ".join(sorted(parts))


def tables(results: pd.DataFrame, n_splits: dict[str, int]) -> tuple[str, str, str]:
    """Markdown: (per-task detail for docs/benchmarks.md, authors-only table for docs/kong2023.md, README lines)."""
    from ssl_featurizer.bench.families import BENCHMARK_FAMILIES, family_model
    from ssl_featurizer.bench.stats import SET_RULE
    from ssl_featurizer.models.registry import DEFAULT_MODEL

    decided = all_comparisons(results, n_splits)
    size = len(decided)
    lines, gate = [], []
    scores: dict[tuple[str, str], list[tuple[str, dict]]] = {(a, b): [] for a in LABELS for b in OPPONENTS}
    head = ["| task | " + " | ".join(f"{LABELS[a]} vs {b}" for a, b in COMPARISONS) + " |", "|---" * (len(COMPARISONS) + 1)
            + "|"]
    for task in dict.fromkeys(results.task):
        block = results[results.task == task]
        n = n_splits.get(task, block.split.nunique())
        lines += [f"#### {task}", "", (f"{n} outer splits ({', '.join(sorted(block.split.unique())[:3])}, …), "
                  f"{int(block.n_train.mean()):,} training / {int(block.n_test.mean()):,} test rows per split; "
                  f"material set: {MATERIAL_SETS.get(task, task)}."), "",
                  ("| family | menu | test MAE (mean ± std) | splits | selection + fit time | "
                  "chosen configuration per split |"), "|---|---|---|---|---|---|"]
        for family in BENCHMARK_FAMILIES:
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
        lines += ["", "| comparison (A − B) | paired difference (mean ± std) | corrected p | Holm-adjusted p | verdict |",
                  "|---|---|---|---|---|"]
        cells: dict[tuple[str, str], str] = {}
        for a, b in table_pairs():
            c = decided.get((task, a, b))
            if c is None:
                if (a, b) in COMPARISONS:
                    done = [int((block.family == f).sum()) for f in (a, b)]
                    cells[a, b] = f"pending ({a} {done[0]}/{n}, {b} {done[1]}/{n} splits)"
                continue
            lines.append(f"| {a} − {b} | {c['diff']:+.4g} ± {c['diff_std']:.2g} | {c['p']:.3g} | {c['p_holm']:.3g} | "
                         f"{c['verdict']} |")
            if (a, b) in COMPARISONS:
                cells[a, b] = f"{c['verdict']} (p = {c['p']:.2g}, adjusted {c['p_holm']:.2g})"
        head.append(f"| {task} | " + " | ".join(cells[c] for c in COMPARISONS) + " |")
        lines.append("")
        for a in ("ssl", "ssl_inductive"):
            for b in ("authors", "peer"):
                c = decided.get((task, a, b))
                label = f"{LABELS[a]}: `{family_model(a)}` | {OPPONENTS[b]}"
                if c is not None:
                    gate.append(f"| {task} | {label} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {c['diff']:+.4g} "
                                f"({c['diff'] / c['mean_b']:+.1%}) | {c['p']:.3g} | {c['p_holm']:.3g} | "
                                f"{c['verdict']} |")
                    scores[a, b].append((task, c))
                else:
                    done = {f: block[block.family == f] for f in (a, b)}
                    gate.append(f"| {task} | {label} | " + " | ".join(
                        f"{d.test_mae.mean():.4g} ({len(d)}/{n} splits)" if len(d) else f"0/{n} splits"
                        for d in done.values()) + " | — | — | — | pending |")
    sets = {MATERIAL_SETS.get(t, t) for t in results.task.unique()}
    tallies = set_tallies(decided, list(dict.fromkeys(results.task)))
    summary = [f"Default model `{DEFAULT_MODEL}`. **Its pretraining corpus contains the structures of these tasks (no "
               "labels)**, so ours is transductive here; its inductive control (`ssl_inductive`, the same recipe "
               "pretrained without any structure of these tasks) shows what that is worth. The hand-built descriptors "
               "are not transductive, the authors' "
               "checkpoints were pretrained on other structures, and CHGNet was trained on Materials Project "
               "relaxation trajectories (energies, forces, stresses, magnetic moments), which likely include many "
               f"of these materials with their DFT energies. {results.task.nunique()} task(s) on {len(sets)} material "
               "set(s) so far (log K and log G are two targets of one set; MAGNDATA's site moments and transition "
               "temperatures share 1,086 of 1,089 materials and are one set)"
               + (f"; not started: {', '.join(t for t in TASKS if t not in set(results.task))}"
                  if set(TASKS) - set(results.task) else "")
               + f". Selection and fitting took {results.seconds.sum() / 3600:.1f} h of wall time (one process per "
               "family, `OMP_NUM_THREADS=1`, on a 2-core machine shared with other jobs; featurization not included, "
               "see the exploratory tables for its cost per structure).", "",
               (f"**Multiple comparisons**: the {size} paired comparisons below (every pair of families on every task "
               "where both finished) are one family of tests, Holm–Bonferroni adjusted; a verdict needs an adjusted "
               "p < 0.05 and a lower mean MAE. Both the corrected p and the adjusted p are shown. **Material sets** "
               f"are counted once, by a rule fixed before the results were read: {SET_RULE}."), "", *head, "",
               "Per material set:", "", "| comparison | " + " | ".join(dict.fromkeys(
                   MATERIAL_SETS.get(t, t) for t in results.task.unique())) + " |",
               "|---" * (len(sets) + 1) + "|"]
    for (a, b), found in tallies.items():
        if found:
            by = {name: v for name, v, _ in found}
            summary.append(f"| {LABELS[a]} vs {b} | " + " | ".join(by.get(name, "pending") for name in dict.fromkeys(
                MATERIAL_SETS.get(t, t) for t in results.task.unique())) + " |")
    summary.append("")
    stale = earlier_menus(results)
    readme = readme_table(decided, tallies, results, stale)
    if readme:
        readme.append("")
        readme.append(f"Each cell: the verdict for the material set and the largest Holm-adjusted p among its tasks "
                      f"(Holm–Bonferroni over {size} comparisons: every pair of families on every task); material "
                      f"sets counted once: {SET_RULE}. {SEEN_MARK} The peer encoders (SevenNet-0, CHGNet) were "
                      "trained with labels that overlap a target of this set (MPtrj energies and stresses of Materials "
                      "Project relaxations, as their cards' `label_overlap` states): counted like any other verdict, "
                      "but not a like-for-like comparison of representations. Per-task tables, menus and chosen "
                      "configurations: [docs/benchmarks.md](docs/benchmarks.md).")
        if stale:
            readme.append("")
            readme.append(f"{EARLIER_MARK} Scored with an earlier declared menu, rerun pending: " + "; ".join(
                f"{f} on {', '.join(ts)}" for f, ts in stale.items()) + " (the menu declared now is in "
                "docs/benchmarks.md; until the rerun these verdicts are the earlier menu's).")
    gate_md = [gate_summary(scores), "", ("| task | model | against | its MAE | their MAE | difference (relative) | "
               "corrected p | Holm-adjusted p | verdict |"), "|---|---|---|---|---|---|---|---|---|", *gate]
    return "\n".join(summary + lines), "\n".join(gate_md), "\n".join(readme or ["No comparison has finished yet."])


#: how the README's cells name a winning family on the left of a comparison
WINNER = {"ssl": "ours", "ssl_inductive": "control"}


def readme_table(decided: dict[tuple[str, str, str], dict], tallies: dict, results: pd.DataFrame,
                 stale: dict[str, list[str]] | None = None) -> list[str]:
    """The README's compact table: one row per material set, one column per comparison of :data:`COMPARISONS`;
    a cell is the set's verdict and the largest Holm-adjusted p among its tasks."""
    stale = stale or {}
    sets = list(dict.fromkeys(MATERIAL_SETS.get(t, t) for t in results.task.unique()))
    columns = [(a, b) for a, b in COMPARISONS if tallies.get((a, b))]
    if not columns:
        return []
    rows = ["| material set | " + " | ".join(f"{LABELS[a]} vs {b}" for a, b in columns) + " |",
            "|---" * (len(columns) + 1) + "|"]
    for name in sets:
        cells = []
        for a, b in columns:
            verdict = next((v for n, v, _ in tallies[a, b] if n == name), None)
            ps = [c["p_holm"] for (task, ca, cb), c in decided.items()
                  if (ca, cb) == (a, b) and MATERIAL_SETS.get(task, task) == name]
            word = ("pending" if verdict is None else f"{WINNER.get(a, a)} wins" if verdict == f"{a} wins"
                    else f"{b} wins" if verdict == f"{b} wins" else verdict)
            seen = b == "peer" and any(MATERIAL_SETS.get(t, t) == name for t in PEER_SEEN)
            earlier = any(MATERIAL_SETS.get(t, t) == name for f in (a, b) for t in stale.get(f, ()))
            cells.append(word + (f" ({max(ps):.2g})" if ps and verdict not in (None, "pending") else "")
                         + (f" {SEEN_MARK}" if seen else "") + (f" {EARLIER_MARK}" if earlier else ""))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


HISTORY_COLUMNS = ["model", "task", "a", "b", "mean_a", "mean_b", "p", "p_holm", "family_size", "verdict"]


def update_history(path: Path, results: pd.DataFrame, n_splits: dict[str, int]) -> pd.DataFrame:
    """Append the current default's verdict rows (:data:`COMPARISONS`) to the history CSV at ``path``.

    Rows are never overwritten or removed: a row is added when no identical one (same model, task, comparison,
    means, p-values and verdict) is there yet, with the date it was first recorded. So every shipped default keeps
    its verdicts after it is replaced, and a default whose verdicts changed (more tasks finished, a larger family
    of tests) shows each version.
    """
    from datetime import date

    from ssl_featurizer.bench.families import family_model

    history = pd.read_csv(path) if path.exists() else pd.DataFrame(columns=[*HISTORY_COLUMNS, "recorded"])
    decided = all_comparisons(results, n_splits)
    new = [{"model": family_model(a) if a in LABELS else "", "task": task, "a": a, "b": b,
            "mean_a": round(c["mean_a"], 6), "mean_b": round(c["mean_b"], 6), "p": float(f"{c['p']:.3g}"),
            "p_holm": float(f"{c['p_holm']:.3g}"), "family_size": c["family_size"], "verdict": c["verdict"]}
           for (task, a, b), c in decided.items() if (a, b) in COMPARISONS]
    seen = {tuple(str(v) for v in r) for r in history[HISTORY_COLUMNS].itertuples(index=False)}
    added = [{**r, "recorded": date.today().isoformat()} for r in new
             if tuple(str(r[k]) for k in HISTORY_COLUMNS) not in seen]
    if added:
        history = pd.DataFrame(added) if history.empty else pd.concat([history, pd.DataFrame(added)],
                                                                       ignore_index=True)
        history.to_csv(path, index=False)
    return history


def history_markdown(history: pd.DataFrame) -> str:
    """Every recorded verdict row of every default, oldest first (the generated history block)."""
    lines = ["| recorded | model | task | comparison | A mean MAE | B mean MAE | p | adjusted p (tests) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in history.to_dict("records"):
        lines.append(f"| {r['recorded']} | `{r['model']}` | {r['task']} | {r['a']} vs {r['b']} | {r['mean_a']:.4g} | "
                     f"{r['mean_b']:.4g} | {r['p']:.3g} | {r['p_holm']:.3g} ({int(r['family_size'])}) | "
                     f"{r['verdict']} |")
    return "\n".join(lines)


def menus_markdown() -> str:
    """The declared menus (docs/benchmarks.md lists them; a test checks that the page and the code agree)."""
    from ssl_featurizer.bench.families import (
        BASE_REGRESSORS,
        BENCHMARK_FAMILIES,
        CHECKPOINTS,
        POSITIVE_REGRESSORS,
        declared_menu,
        family_model,
    )

    lines = ["| family | structure tasks | site tasks |", "|---|---|---|"]
    for family in BENCHMARK_FAMILIES:
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


def encoders_markdown(results: pd.DataFrame, n_splits: dict[str, int]) -> str:
    """The quality half of docs/encoders.md: per task, ours against the peer family (the foreign encoders, each
    configuration chosen on training rows), which encoder the peer family chose per split, and the verdict with
    the Holm adjustment of the headline (the same family of tests)."""
    decided = all_comparisons(results, n_splits)
    rows = [("| task | ours (mean MAE) | foreign encoders (mean MAE) | the peer family chose | corrected p | "
            "Holm-adjusted p | verdict | peer menu of this run |"),
            "|---|---|---|---|---|---|---|---|"]
    for task in dict.fromkeys(results.task):
        c = decided.get((task, "ssl", "peer"))
        peer = results[(results.task == task) & (results.family == "peer")]
        if c is None or peer.empty:
            continue
        chosen = peer.spec.str.split("/").str[0].where(peer.spec.str.contains("/"), peer.spec.str.split("+").str[0])
        counts = ", ".join(f"{name} ×{n}" for name, n in chosen.value_counts().items())
        adapters = peer.spec.str.contains("/").any()
        menu = "every block / last block of SevenNet-0 and CHGNet × our poolings, ± magpie" if adapters else \
            "the earlier CHGNet-only menu (its pooled crystal_fea, or atom_fea for sites, ± magpie; not yet rerun)"
        rows.append(f"| {task} | {c['mean_a']:.4g} | {c['mean_b']:.4g} | {counts} | {c['p']:.3g} | "
                    f"{c['p_holm']:.3g} | {c['verdict']} | {menu} |")
    size = next(iter(decided.values()))["family_size"] if decided else 0
    rows += ["", (f"Family of tests: the headline's {size} comparisons, Holm–Bonferroni adjusted together; a verdict "
             "needs an adjusted p < 0.05 and a lower mean MAE. Generated by `python studies/verdicts.py --docs-only` "
             "from the per-split rows in `studies/results/verdicts/`; the full tables and menus are in "
             "[Benchmarks](benchmarks.md).")]
    return "\n".join(rows)


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
    write_block(ROOT / "docs" / "benchmarks.md", "history", history_markdown(update_history(out / "history.csv",
                                                                                            results, n_splits)))
    write_block(ROOT / "docs" / "kong2023.md", "verdicts", gate)
    write_block(ROOT / "README.md", "verdicts", readme)
    write_block(ROOT / "docs" / "encoders.md", "encoder-quality", encoders_markdown(results, n_splits))
    print(detail)


def main() -> None:
    from ssl_featurizer.bench.families import BENCHMARK_FAMILIES

    parser = script_parser(__doc__, tasks=",".join(TASKS), cache_dir=True)
    parser.add_argument("--families", default=",".join(BENCHMARK_FAMILIES))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--skip", default="", help="component descriptors not to featurize now (e.g. ofm)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--featurize-only", action="store_true", help="fill the feature cache, score nothing")
    parser.add_argument("--docs", action="store_true", help="write the tables into docs/ and README.md")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs from results on disk")
    args = parser.parse_args()
    out = Path(args.out)
    tasks = [t for t in args.tasks.split(",") if t]
    families = [f for f in args.families.split(",") if f]
    bad = [f for f in families if f not in BENCHMARK_FAMILIES]
    if bad:
        raise SystemExit(f"unknown families {bad}; choose from {', '.join(BENCHMARK_FAMILIES)}")
    if not args.docs_only:
        from project_tasks import load_task

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
