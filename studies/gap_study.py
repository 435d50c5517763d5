"""How far is our fast encoder from a foundation potential's block scalars, and what closes the gap cheaply?

Development tasks only (never a benchmark task): MP-2018 (MEGNet) formation energy and PBE band gap of ``--n-dev``
structures of the JARVIS-Leaderboard *train* split that match no benchmark structure by id or by structure
(:func:`dev_tasks`, ``studies/overlap.py``). SevenNet-0 was trained on MPtrj, whose labels are DFT energies of
Materials Project relaxations: the formation energy is **seen** by it (its line is reported, not counted in the
goal); the PBE gap is not.

Every row is a *family* of descriptor variants declared below (:data:`LEVERS`) before any run; per outer split
(3 random 80/20 splits) the variant is chosen on training rows only by the kernel ridge inner CV
(:mod:`ssl_featurizer.bench.selection`), and only the chosen one is scored on the test rows. The rows:

- ``ours``: the registry's default, the headline ``ssl`` menu (layer sets × poolings of
  :mod:`ssl_featurizer.bench.families`) — the baseline;
- ``sevennet-0``: SevenNet-0's invariant scalars after every interaction block, and after the last alone, × the
  same poolings — the target line;
- levers that need no new pretraining: ``ours-every-layer`` (layer sets up to all six layers), ``ours-order-statistics`` (the poolings plus min and max per feature), ``ours+1.2`` (an ensemble of two shipped models:
  the same layer set and pooling of both, concatenated).

- short pretraining runs of ``studies/distill_study.py`` (``short-*``: one change each to the control recipe;
  ``corpus-every<N>``: the control recipe on other corpus fractions), each compared with the short control.

For each lever and target: the gap closed, ``(MAE ours − MAE lever) / (MAE ours − MAE SevenNet-0)`` (1 = level
with SevenNet-0, 0 = no better than ours), and the featurization cost per structure of its encoder, measured here
(:func:`measure_costs`); for each short run its training compute, measured (:func:`training_compute`) and drawn
against its development MAE (``docs/figures/gap_study_compute.png``). Resumable (one row per target, family and split
in ``studies/results/gap_study/scores.csv``; ``cost.csv``, ``compute.csv``); writes the ``gap-study`` block of
docs/pretraining.md and its figures.

    OMP_NUM_THREADS=1 python studies/gap_study.py --n-dev 2000
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from common import ResultRows, script_parser
from docs_blocks import write_block

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "studies" / "results" / "gap_study"
PAGE = ROOT / "docs" / "pretraining.md"
FIGURE = ROOT / "docs" / "figures" / "gap_study_corpus.png"
COMPUTE_FIGURE = ROOT / "docs" / "figures" / "gap_study_compute.png"
#: development targets whose labels SevenNet-0's training data contains (MPtrj: energies of MP relaxations)
SEEN_BY_PEER = {"e_form": "MPtrj energies (formation energies derive from them)"}
TARGETS = ("e_form", "gap_pbe")
PEER = "sevennet-0"
ENSEMBLE_PARTNER = "cgcnn-ssl-mp2025@1.2"
ORDER_STATISTICS = (("mean", "std", "min", "max"), ("mean", "std", "density", "min", "max"))
EVERY_LAYER = ("01234", "012345")

#: the corpus fractions of the corpus-size axis (every N-th structure; 40 is the short-control run itself)
CORPUS_AXIS = (160, 10, 2)
#: the student-capacity probe: runs of studies/distill_study.py on every 8th corpus structure, 3 epochs
CAPACITY = {"control": "control recipe", "distilled_w3": "control recipe with distillation weighted 3",
            "angular_distilled_w3": "same with bond-angle moments (16 channels) in the student",
            "width128_distilled_w3": "same with a width-128 student"}
#: the declared menus: family → how its menu is built (see :func:`menu`)
LEVERS = {
    "ours": "the headline ssl menu of the default model",
    "sevennet-0": "every block / last block of SevenNet-0 × the headline poolings",
    "ours-every-layer": f"the ssl menu plus layer sets {', '.join(EVERY_LAYER)}",
    "ours-order-statistics": "the ssl menu plus poolings " + ", ".join("-".join(p) for p in ORDER_STATISTICS),
    "ours+1.2": f"each ssl variant of the default concatenated with the same variant of {ENSEMBLE_PARTNER}",
    "short-control": "the ssl menu of the short control run of studies/distill_study.py",
    "short-distilled": "the ssl menu of the short run with distillation from SevenNet-0 (studies/distill_study.py)",
    "short-angular": "the ssl menu of the short run whose encoder reads bond angles (16 angular channels, degrees 0-4)",
    "short-width128": "the ssl menu of the short control recipe at width 128",
    "short-depth7": "the ssl menu of the short control recipe at depth 7",
    "short-positions": "the ssl menu of the short control recipe plus position denoising",
    "short-angular_positions": "the ssl menu of the short run with bond-angle moments and position denoising",
    "short-epochs48": "the ssl menu of the short control recipe trained 3 times as long (48 epochs, the same subset)",
    "short-distilled_w3": "the ssl menu of the short distilled run with the distillation loss weighted 3",
    "short-denoise_w3": "the ssl menu of the short control recipe with the denoising loss weighted 3",
    # the corpus-size axis at fixed compute: the control recipe and steps on every N-th corpus structure
    **{f"corpus-every{n}": f"the ssl menu of the control recipe at the same steps on every {n}-th corpus structure"
       for n in CORPUS_AXIS},
    # the run the short runs point to: 2.0 trained further (2 epochs on every 8th corpus structure), with its own
    # objectives (the equal-step control) or with distillation from SevenNet-0 added
    "continued": "the ssl menu of 2.0 trained 2 more epochs with its own objectives (studies/distill_study.py)",
    "continued-distilled": "the ssl menu of 2.0 trained 2 more epochs with distillation from SevenNet-0 added",
    # student capacity: from scratch on every 8th corpus structure, 3 epochs, distillation weighted 3, three students
    **{f"capacity-{run}": f"the ssl menu of the {what} (studies/distill_study.py --every 8 --epochs 3)"
       for run, what in CAPACITY.items()},
    # the same recipes at 4 times the steps (12 epochs): the distilled recipe's compute curve and a candidate to ship
    "long-control": "the ssl menu of the control recipe, 12 epochs on every 8th corpus structure",
    "long-distilled_w3": "the ssl menu of the control recipe with distillation weighted 3, 12 epochs on every 8th "
                         "corpus structure",
}
#: the distilled models that may ship beside the default, each by the declared rule of :func:`development_choice`
DISTILLED_CANDIDATES = ("continued-distilled", "long-distilled_w3")
#: the distilled recipe at increasing training compute (the same subset, from scratch), a second compute fit
DISTILLED_CURVE = ("capacity-distilled_w3", "long-distilled_w3")
#: the corpus subset of the continuations (every N-th structure)
CONTINUATION_EVERY = 8
#: the model the distilled candidate ships as when it passes :func:`development_choice`
DISTILLED_MODEL = "cgcnn-distilled-mp2025@1.0"
#: the family prefixes whose models are runs of studies/distill_study.py (under :data:`SHORT_RUNS`)
RUN_PREFIXES = ("short-", "corpus-every", "continued", "capacity-", "long-")
#: the development models of studies/distill_study.py
SHORT_RUNS = ROOT / "studies" / "results" / "distill_study" / "models"
#: the short runs that change one thing of the control recipe at the control's corpus and epochs (``--every 40``)
ENCODER_AXES = ("distilled", "angular", "width128", "depth7", "positions", "angular_positions", "epochs48",
                "distilled_w3", "denoise_w3")
#: the 2.0 recipe at increasing training compute, the points of the compute fit (:func:`compute_fit`): the short
#: control, the same 3 times as long, and 2.0 itself (its full run on the whole corpus)
COMPUTE_CURVE = ("short-control", "short-epochs48", "ours")
#: structures whose featurization is timed per encoder (the first of the development set), batch and repeats
COST_N, COST_BATCH, COST_REPEATS = 100, 64, 2


def dev_tasks(n_dev: int) -> dict:
    """``{target: Task}`` of the development structures (the default-model choice's tasks)."""
    from project_tasks import dev_task

    return dev_task(n_dev)


def menu(family: str, task, cache_dir: Path):
    """The declared :class:`~ssl_featurizer.bench.selection.Menu` of ``family`` on ``task`` (cached features)."""
    from ssl_featurizer.bench.families import LAYER_SETS, PEERS, POOLING_MENU
    from ssl_featurizer.bench.selection import Menu, candidate_features
    from ssl_featurizer.models.registry import resolve_model

    cache = str(cache_dir)
    default = resolve_model("default")[0]
    if family == "ours":
        return candidate_features(task, default, LAYER_SETS, POOLING_MENU, cache)
    if family == PEER:
        return candidate_features(task, PEER, PEERS[PEER], POOLING_MENU, cache, f"{PEER}/")
    if family == "ours-every-layer":
        return candidate_features(task, default, (*LAYER_SETS, *EVERY_LAYER), POOLING_MENU, cache)
    if family == "ours-order-statistics":
        return candidate_features(task, default, LAYER_SETS, (*POOLING_MENU, *ORDER_STATISTICS), cache)
    if family == "ours+1.2":
        ours = candidate_features(task, default, LAYER_SETS, POOLING_MENU, cache, "a/")
        partner = candidate_features(task, ENSEMBLE_PARTNER, LAYER_SETS, POOLING_MENU, cache, "b/")
        variants = {spec[2:]: ours.variants[spec] + partner.variants["b/" + spec[2:]] for spec in ours.variants}
        return Menu({**ours.blocks, **partner.blocks}, variants, {**ours.seconds, **partner.seconds})
    if family.startswith(RUN_PREFIXES):
        return candidate_features(task, str(SHORT_RUNS / short_run_folder(family)), LAYER_SETS, POOLING_MENU, cache)
    raise ValueError(f"unknown family {family!r}; declared: {list(LEVERS)}")


def score(n_dev: int, cache_dir: Path, families: list[str]) -> pd.DataFrame:
    """Selected-variant test MAE per (target, family, split); resumable through ``scores.csv``."""
    from ssl_featurizer.bench.protocol import splits
    from ssl_featurizer.bench.selection import select_on_splits, selected

    results = ResultRows(OUT / "scores.csv")
    done = results.done("target", "family")
    todo = [(t, f) for t in TARGETS for f in families if (t, f) not in done]
    if not todo:
        return results.frame()
    tasks = dev_tasks(n_dev)
    for target, family in todo:
        task = tasks[target]
        candidates = menu(family, task, cache_dir)
        seconds = float(sum(candidates.seconds.values()))
        rows = []
        for name, _, _, scored in select_on_splits(candidates, task, splits(task, 3)):
            pick = selected(scored)
            rows.append({"target": target, "family": family, "split": name, "spec": pick["spec"],
                         "test_mae": pick["test_mae"], "seconds_per_structure": seconds,
                         "n_variants": len(candidates), "n_dev": len(task)})
        results.add(rows)
        print(f"{target} {family}: MAE {np.mean([r['test_mae'] for r in rows]):.4f}", flush=True)
    return results.frame()


def cost_model(family: str) -> tuple[str, str] | None:
    """``(model, layers)`` whose featurization costs what ``family``'s menu costs at its deepest layer set (None for
    a family of several models)."""
    from ssl_featurizer.bench.families import LAYER_SETS, PEERS

    deepest = max(LAYER_SETS, key=len)
    if family == PEER:
        return PEER, PEERS[PEER][0]
    if family in ("ours", "ours-order-statistics"):
        return "default", deepest
    if family == "ours-every-layer":
        return "default", max(EVERY_LAYER, key=len)
    if family.startswith(RUN_PREFIXES):
        return str(SHORT_RUNS.relative_to(ROOT) / short_run_folder(family)), deepest
    return None


def cost_key(model: str, layers: str) -> str:
    """The row key of a cost measurement (text, never read back as a number)."""
    return f"{model} layers {layers}"


def measure_costs(n_dev: int, families: list[str]) -> pd.DataFrame:
    """CPU ms per structure of each family's encoder at its menu's deepest layer set: the first :data:`COST_N`
    development structures, batches of :data:`COST_BATCH`, one torch thread, best of :data:`COST_REPEATS` after a
    warm-up, CPU time of this process. Resumable (``cost.csv``, one row per model and layers)."""
    import platform
    import time

    import torch

    from ssl_featurizer.embed import embed_structures, parse_layers
    from ssl_featurizer.models.registry import load_model

    rows = ResultRows(OUT / "cost.csv")
    done = {key for (key,) in rows.done("key")}
    todo = sorted({m for f in families if (m := cost_model(f)) is not None and cost_key(*m) not in done})
    if todo:
        torch.set_num_threads(1)
        structures = list(next(iter(dev_tasks(n_dev).values())).inputs[:COST_N])
        for name, layer_spec in todo:
            model = load_model(name)
            layers = parse_layers(layer_spec, len(model.layer_widths) - 1)
            embed_structures(model, structures[:5], layers, batch_size=COST_BATCH)  # warm-up
            best = np.inf
            for _ in range(COST_REPEATS):
                start = time.process_time()
                out = embed_structures(model, structures, layers, batch_size=COST_BATCH)
                best = min(best, time.process_time() - start)
            rows.add([{"key": cost_key(name, layer_spec), "n": len(structures), "failed": sum(e is not None for e in out.errors),
                       "cpu_ms_per_structure": 1e3 * best / len(structures), "machine": platform.machine(),
                       "torch": torch.__version__}])
            print(f"cost {name} {layer_spec}: {1e3 * best / len(structures):.1f} ms per structure", flush=True)
    return rows.frame()


def closure(results: pd.DataFrame) -> pd.DataFrame:
    """Mean MAE, cost and the share of the ours → SevenNet-0 gap each family closes, per target."""
    mean = results.groupby(["target", "family"]).agg(mae=("test_mae", "mean"), sd=("test_mae", "std"),
                                                     seconds=("seconds_per_structure", "first"),
                                                     picks=("spec", lambda s: s.value_counts().index[0]))
    out = []
    for (target, family), row in mean.iterrows():
        ours = mean.loc[(target, "ours"), "mae"] if (target, "ours") in mean.index else np.nan
        peer = mean.loc[(target, PEER), "mae"] if (target, PEER) in mean.index else np.nan
        gap = ours - peer
        out.append({"target": target, "family": family, "mae": row.mae, "sd": row.sd, "seconds": row.seconds,
                    "most_chosen": row.picks, "closed": (ours - row.mae) / gap if gap > 0 else np.nan,
                    "seen_by_peer": target in SEEN_BY_PEER})
    return pd.DataFrame(out)


#: the comparisons made on the study's rows (one family of tests, Holm-adjusted together): each lever against
#: ours, and each short run against the short control (same corpus, steps and seed)
PAIRS = (*((f, "ours") for f in ("ours-every-layer", "ours-order-statistics", "ours+1.2")),
         *((f"short-{run}", "short-control") for run in ENCODER_AXES),
         ("continued", "ours"), ("continued-distilled", "ours"), ("continued-distilled", "continued"),
         ("capacity-distilled_w3", "capacity-control"), ("capacity-angular_distilled_w3", "capacity-distilled_w3"),
         ("capacity-width128_distilled_w3", "capacity-distilled_w3"),
         ("long-distilled_w3", "long-control"), ("long-distilled_w3", "ours"))


def paired(results: pd.DataFrame) -> pd.DataFrame:
    """Per target and pair of :data:`PAIRS`: mean paired difference over the splits, corrected resampled t-test
    (test share 0.2), and the Holm-adjusted p over every comparison made here."""
    from ssl_featurizer.bench.stats import corrected_ttest, holm, verdict

    rows = []
    for target in TARGETS:
        r = results[results.target == target].pivot(index="split", columns="family", values="test_mae")
        for a, b in PAIRS:
            if a in r and b in r and r[[a, b]].notna().all().all():
                n = int(results.n_dev.iloc[0])
                diffs = (r[a] - r[b]).to_numpy()
                _, p = corrected_ttest(diffs, 0.8 * n, 0.2 * n)
                rows.append({"target": target, "a": a, "b": b, "mean_a": r[a].mean(), "mean_b": r[b].mean(),
                             "diff": diffs.mean(), "p": p})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out.p.to_numpy())
        out["verdict"] = [verdict(a, ma, b, mb, ph) for a, ma, b, mb, ph in
                          zip(out.a, out.mean_a, out.b, out.mean_b, out.p_holm)]
    return out


def development_choice(summary: pd.DataFrame) -> str:
    """The declared development choice of the distilled candidates (:data:`DISTILLED_CANDIDATES`): a candidate
    passes only if its mean development MAE is below ours on every target, the one the teacher saw and the one it
    did not; of those that pass, the one with the lowest mean MAE relative to ours (averaged over the targets)
    ships beside the default as :data:`DISTILLED_MODEL`, and only then does its gate run, once. The sentence that
    says how it went ('' before any candidate is scored)."""
    rows = summary.set_index(["target", "family"])
    verdicts, passed = [], {}
    for candidate in DISTILLED_CANDIDATES:
        if not all((t, f) in rows.index for t in TARGETS for f in ("ours", candidate)):
            continue
        ratio = {t: rows.loc[(t, candidate), "mae"] / rows.loc[(t, "ours"), "mae"] for t in TARGETS}
        worse = [t for t, r in ratio.items() if not r < 1]
        if not worse:
            passed[candidate] = float(np.mean(list(ratio.values())))
        verdicts.append(f"`{candidate}` " + ("is below ours on every target" if not worse else
                                            "is not below ours on " + ", ".join(f"`{t}`" for t in worse)))
    if not verdicts:
        return ""
    outcome = (f"`{min(passed, key=passed.get)}` ships beside the default as `{DISTILLED_MODEL}`" if passed
               else "no distilled model ships")
    return ("**Development choice** (declared before the runs: a distilled candidate ships beside the default only if "
            f"its mean development MAE is below ours on every target): {'; '.join(verdicts)}, so {outcome}.")


def choice_table(summary: pd.DataFrame) -> str:
    """The development choice as a block of its own (docs/pretraining.md and the shipped distilled model's card):
    ours, SevenNet-0, each distilled candidate and its equal-step control, per target, then
    :func:`development_choice`'s sentence ('' before any candidate is scored)."""
    choice = development_choice(summary)
    if not choice:
        return ""
    controls = {"continued-distilled": "continued", "long-distilled_w3": "long-control"}
    shown = ["ours", PEER, *(f for c in DISTILLED_CANDIDATES for f in (controls[c], c))]
    rows = summary.set_index(["target", "family"])
    lines = ["| family | " + " | ".join(f"{t} MAE" for t in TARGETS) + " |", "|---|" + "---|" * len(TARGETS)]
    for family in shown:
        if all((t, family) in rows.index for t in TARGETS):
            lines.append(f"| {family} | " + " | ".join(
                f"{rows.loc[(t, family), 'mae']:.4f} ± {rows.loc[(t, family), 'sd']:.4f}" for t in TARGETS) + " |")
    return "\n".join(lines) + ("\n\n2,000 development structures (MP-2018 labels, no benchmark twin), 3 random 80/20 "
                               "splits, each family's variant chosen on training rows (`studies/gap_study.py`). "
                               + choice)


def family_costs(costs: pd.DataFrame) -> dict[str, float]:
    """``{family: CPU ms per structure}`` of every family whose encoder's cost is in ``costs``."""
    if costs.empty:
        return {}
    ms = dict(zip(costs.key, costs.cpu_ms_per_structure))
    return {f: ms[cost_key(*m)] for f in LEVERS if (m := cost_model(f)) is not None and cost_key(*m) in ms}


def table(summary: pd.DataFrame, comparisons: pd.DataFrame, n_dev: int, costs: pd.DataFrame) -> str:
    """The docs block: the MAE and gap closed per family and target and the encoder's cost, then the paired
    comparisons."""
    ms = family_costs(costs)
    lines = ["| family | " + " | ".join(f"{t} MAE | {t} gap closed" for t in TARGETS)
             + " | CPU ms / structure | × faster than SevenNet-0 |",
             "|---|" + "---|---|" * len(TARGETS) + "---|---|"]
    for family in LEVERS:
        rows = summary[summary.family == family].set_index("target")
        if rows.empty:
            continue
        cells = []
        for t in TARGETS:
            if t in rows.index:
                r = rows.loc[t]
                closed = "" if family in ("ours", PEER) or np.isnan(r.closed) else f"{r.closed:+.2f}"
                cells += [f"{r.mae:.4f} ± {r.sd:.4f}", closed or "—"]
            else:
                cells += ["pending", "—"]
        cells += [f"{ms[family]:.1f}", f"{ms[PEER] / ms[family]:.0f}"] if family in ms and PEER in ms else ["", ""]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    if len(comparisons):
        lines += ["", "| target | comparison | mean MAE | paired difference | corrected p | Holm-adjusted p | verdict |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.target} | {r.a} vs {r.b} | {r.mean_a:.4f} vs {r.mean_b:.4f} | {r.diff:+.4f} | {r.p:.3g} | "
                  f"{r.p_holm:.3g} | {r.verdict} |" for r in comparisons.itertuples()]
    seen = "; ".join(f"`{t}`: seen by SevenNet-0 ({why})" for t, why in SEEN_BY_PEER.items())
    groups = (("Short runs (the 2.0 recipe from scratch, seed 0; from their cards)", short_run_cards(), False),
              ("Continuations (from their cards)", continuation_cards(), False),
              ("Student capacity and the long runs (from scratch, from their cards)", capacity_cards(), True))
    for heading, cards, teacher_share in groups:
        runs = "; ".join(run_line(f, c, teacher_share) for f, c in cards.items() if f in set(summary.family))
        if runs:
            lines += ["", f"{heading}: {runs}."]
    return "\n".join(lines) + (
        f"\n\n{n_dev:,} development structures (MP-2018 labels, no benchmark twin), 3 random 80/20 splits; per split "
        "each family's variant chosen on training rows by kernel ridge inner CV. Gap closed = (MAE ours − MAE "
        f"family) / (MAE ours − MAE SevenNet-0). {seen}: its line is shown, the goal counts only unseen targets. "
        f"Comparisons: corrected resampled t-test over the 3 splits, Holm-adjusted over the {len(comparisons)} made "
        "here. Cost: CPU ms per structure of the family's encoder at its menu's deepest layer set (ours: layers "
        f"0123 of the ssl menu; SevenNet-0: every block), the first {COST_N} development structures in batches of "
        f"{COST_BATCH}, one thread, best of {COST_REPEATS}, on this 2-core machine shared with other jobs "
        "(`ours+1.2`: two 5 × 64 encoders). Generated by `python studies/gap_study.py`.")


def run_cards(families) -> dict[str, dict]:
    """``{family: its model card}`` of the runs of ``families`` exported so far (in that order)."""
    import json

    cards = {f: SHORT_RUNS / short_run_folder(f) / "card.json" for f in families}
    return {f: json.loads(path.read_text()) for f, path in cards.items() if path.exists()}


def short_run_cards() -> dict[str, dict]:
    """``{family: its model card}`` of the short runs exported so far."""
    return run_cards(["short-control", *(f"short-{r}" for r in ENCODER_AXES), *(f"corpus-every{n}" for n in CORPUS_AXIS)])


def capacity_cards() -> dict[str, dict]:
    """``{family: its model card}`` of the student-capacity and long runs (from scratch, every 8th corpus structure)
    exported so far."""
    return run_cards(f for f in LEVERS if f.startswith(("capacity-", "long-")))


def continuation_cards() -> dict[str, dict]:
    """``{family: its model card}`` of the continuations exported so far."""
    return run_cards(f for f in LEVERS if f.startswith("continued"))


def run_line(family: str, card: dict, teacher_share: bool = False) -> str:
    """How a run trained, from its card: structures, steps (``more`` steps for a continuation), batch, what it
    changes (:func:`recipe_change`) and, with ``teacher_share``, the held-out share of the teacher's variance it
    leaves unexplained."""
    t = card["training"]
    line = (f"`{family}` {t['n_train']:,} structures, {t['global_steps']:,} {'more ' if t.get('init_from') else ''}"
            f"steps of {t['optimisation']['batch_size']}{recipe_change(card)}")
    if teacher_share and "val_distill_loss" in card["metrics"]:
        line += f", held-out unexplained share of the teacher's variance {card['metrics']['val_distill_loss']:.3f}"
    return line


def trained_cards() -> dict[str, dict]:
    """The short runs' cards and the default's (``ours``): every family whose training compute is measured."""
    from ssl_featurizer.models.catalog import DEFAULT_MODEL, read_card

    return {**short_run_cards(), **capacity_cards(), "ours": read_card(DEFAULT_MODEL)}


def recipe_change(card: dict) -> str:
    """What a short run's card says it adds to the control recipe (5 × 64, no angles, no position denoising, no
    distillation), as
    `` (+ ...)``, or nothing."""
    e, enabled = card["encoder"], card["training"]["objectives"]["enabled"]
    init = card["training"].get("init_from")
    changes = [f"from `{init['model']}`, lr {card['training']['optimisation']['lr']:g}"] if init else []
    changes += [f"width {e['width']}"] if e["width"] != 64 else []
    changes += [f"depth {e['n_layers']}"] if e["n_layers"] != 5 else []
    if e.get("angular_channels"):
        changes.append(f"bond-angle moments, {e['angular_channels']} channels")
    if "denoise_positions" in enabled:
        changes.append("position denoising")
    if "distill" in enabled:
        teacher = card.get("label_overlap", {}).get("inherited_from", "a teacher").split(" (")[0]
        changes.append(f"distillation from {teacher}")
    changes += [f"{name} loss weight {params['weight']:g}" for name, params in enabled.items()
                if isinstance(params, dict) and params.get("weight", 1.0) != 1.0]
    return f" (+ {'; '.join(changes)})" if changes else ""


def mae_figure(summary: pd.DataFrame, xs: dict[str, float], xlabel: str, path: Path, title: str,
               line: str | None = None, fits: dict[str, dict[str, tuple[list, list]]] | None = None) -> Path:
    """Development MAE (± sd over splits) of the families in ``xs`` against their x, one panel per target, with
    ours (2.0, a full run) and SevenNet-0 as horizontal lines; joined as one curve labelled ``line``, or, without
    ``line``, as separate points named by their family; ``fits`` (label → target → x, y) each drawn as a thin dashed
    curve. The
    x axis is logarithmic when x spans more than 5×."""
    from ssl_featurizer.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(5.2 * len(TARGETS), 3.8))
    order = sorted(xs, key=xs.get)
    for ax, target in zip(axes, TARGETS):
        rows = summary[summary.target == target].set_index("family")
        if line:
            ax.errorbar([xs[f] for f in order], [rows.loc[f, "mae"] for f in order],
                        yerr=[rows.loc[f, "sd"] for f in order], marker="o", capsize=3, label=line)
        else:
            for f in order:
                ax.errorbar([xs[f]], [rows.loc[f, "mae"]], yerr=[rows.loc[f, "sd"]], marker="o", capsize=3)
                ax.annotate(f.removeprefix("short-"), (xs[f], rows.loc[f, "mae"]), fontsize=7, xytext=(4, 3),
                            textcoords="offset points")
        for family, style in (("ours", "--"), (PEER, ":")):
            if family in rows.index:
                ax.axhline(rows.loc[family, "mae"], linestyle=style, color="grey", label=family)
        for (label, curves), color in zip((fits or {}).items(), ("tab:red", "tab:purple")):
            if target in curves:
                ax.plot(*curves[target], linestyle="--", linewidth=0.8, color=color, label=label)
        if max(xs.values()) > 5 * min(xs.values()):
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels collide
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"{target} MAE (development)")
        ax.legend(fontsize=8)
    return save_figure(fig, path, title, dpi=110)


def corpus_curve(summary: pd.DataFrame) -> Path | None:
    """The corpus-size axis at fixed compute as a figure: development MAE of the control recipe against its
    training structures (from each run's card), with ours (2.0) and SevenNet-0 as lines; None before any run."""
    points = {f: c["training"]["n_train"] for f, c in short_run_cards().items()
              if (f == "short-control" or f.startswith("corpus-")) and f in set(summary.family)}
    if len(points) < 2:
        return None
    return mae_figure(summary, points, "training structures (every N-th corpus structure)", FIGURE,
                      "corpus size at fixed compute", line="control recipe, about the same steps")


def training_compute(n_dev: int, families: list[str]) -> pd.DataFrame:
    """Training compute of each short run, measured rather than read from the card's wall clock (which moves
    several-fold with the load of this shared machine): the CPU seconds per structure of one encoder forward and
    backward pass (a sum-of-squares loss on every layer) of the run's architecture, on batches of the first
    :data:`COST_N` development structures, one thread, best of :data:`COST_REPEATS`, times the structures the
    run trained on (steps × batch). Resumable (``compute.csv``, one row per run)."""
    import time

    import torch

    from ssl_featurizer.embed import build_graphs
    from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
    from ssl_featurizer.graph.batch import collate_graphs
    from ssl_featurizer.graph.crystal_graph import GraphConfig

    rows = ResultRows(OUT / "compute.csv")
    done = {f for (f,) in rows.done("family")}
    cards = trained_cards()
    todo = [f for f in families if f in cards and f not in done]
    if todo:
        torch.set_num_threads(1)
        structures = list(next(iter(dev_tasks(n_dev).values())).inputs[:COST_N])
        graphs = [g for g in build_graphs(structures, GraphConfig(), vectors=True) if not isinstance(g, str)]
    for family in todo:
        card = cards[family]
        torch.manual_seed(0)
        encoder = CrystalEncoder(EncoderConfig(**card["encoder"])).train()
        batch_size = card["training"]["optimisation"]["batch_size"]
        batches = [collate_graphs(graphs[i:i + batch_size]) for i in range(0, len(graphs), batch_size)]
        best = np.inf
        for _ in range(COST_REPEATS + 1):  # the first pass warms up
            start = time.process_time()
            for b in batches:
                x = torch.randn(len(b.z), encoder.config.n_node_features)
                layers = encoder(x, b.edge_index, b.distance, vectors=b.vector)
                sum(h.square().mean() for h in layers).backward()
            best = min(best, time.process_time() - start)
        per_structure = best / len(graphs)
        structures_seen = card["training"]["global_steps"] * batch_size
        rows.add([{"family": family, "cpu_s_per_structure": per_structure, "structures_seen": structures_seen,
                   "cpu_hours": per_structure * structures_seen / 3600, "n_timed": len(graphs)}])
        print(f"compute {family}: {per_structure * 1e3:.2f} ms per structure and step", flush=True)
    return rows.frame()


def short_run_folder(family: str) -> str:
    """The model folder (under :data:`SHORT_RUNS`) of a short-run family."""
    if family.startswith("corpus-every"):
        return f"control_every{family.removeprefix('corpus-every')}"
    if family.startswith("capacity-"):
        return f"{family.removeprefix('capacity-')}_every{CONTINUATION_EVERY}"
    if family.startswith(("continued", "long-")):
        return f"{family.replace('-', '_')}_every{CONTINUATION_EVERY}"
    return f"{family.removeprefix('short-')}_every40"


def compute_curve(summary: pd.DataFrame, compute: pd.DataFrame) -> Path | None:
    """Development MAE of every short run and of 2.0 against its measured training compute
    (:func:`training_compute`), with ours and SevenNet-0 as lines and the compute fits (:func:`compute_fit`) of the
    2.0 and the distilled recipes over their curves' points; None before two runs are measured."""
    hours = dict(zip(compute.family, compute.cpu_hours)) if len(compute) else {}
    points = {f: hours[f] for f in trained_cards() if f in set(summary.family) and f in hours}
    if len(points) < 2:
        return None
    fits: dict[str, dict[str, tuple[list, list]]] = {}
    for curve, label in ((COMPUTE_CURVE, "compute fit (2.0 recipe)"), (DISTILLED_CURVE, "compute fit (distilled)")):
        for r in compute_fit(summary, compute, curve).itertuples():  # the power law over its points' span
            xs = [hours[f] for f in r.points.split(",") if f in hours]
            grid = np.geomspace(min(xs), max(xs), 20)
            fits.setdefault(label, {})[r.target] = (list(grid), list(np.exp(r.log_a) * grid ** r.exponent))
    return mae_figure(summary, points, "training compute (encoder CPU hours, measured)", COMPUTE_FIGURE,
                      "development MAE against training compute", fits=fits)


def compute_fit(summary: pd.DataFrame, compute: pd.DataFrame, curve: tuple[str, ...] = COMPUTE_CURVE) -> pd.DataFrame:
    """Per target, the power law ``MAE = a · C^b`` through the ``curve`` points measured so far (default
    :data:`COMPUTE_CURVE`, the 2.0 recipe; :data:`DISTILLED_CURVE`, the distilled recipe) (least
    squares in log–log; ``C`` = encoder CPU hours of training: structures trained on × the control's measured CPU
    seconds per structure, :func:`training_compute`), and the compute at which
    it reaches half the ours → SevenNet-0 gap (the goal), as CPU hours and as a multiple of 2.0's. Empty before two
    points are in; no extrapolation when the MAE does not fall with compute."""
    seen = dict(zip(compute.family, compute.structures_seen)) if len(compute) else {}
    if curve[0] not in seen:
        return pd.DataFrame()
    # one architecture along the curve: its cost per structure measured once (the control's), so the points differ
    # by the structures trained on only, not by the load of the machine when each was timed
    per_structure = float(compute.set_index("family").loc[curve[0], "cpu_s_per_structure"])
    hours = {f: seen[f] * per_structure / 3600 for f in (*curve, "ours") if f in seen}
    out = []
    for target in TARGETS:
        rows = summary[summary.target == target].set_index("family")
        points = [f for f in curve if f in rows.index and f in hours]
        if len(points) < 2 or "ours" not in rows.index or PEER not in rows.index:
            continue
        b, log_a = np.polyfit(np.log([hours[f] for f in points]), np.log(rows.loc[points, "mae"]), 1)
        goal = rows.loc["ours", "mae"] - 0.5 * (rows.loc["ours", "mae"] - rows.loc[PEER, "mae"])
        needed = float(np.exp((np.log(goal) - log_a) / b)) if b < 0 else np.nan
        out.append({"target": target, "points": ",".join(points), "exponent": b, "log_a": log_a, "goal_mae": goal,
                    "hours_needed": needed, "times_ours": needed / hours["ours"] if "ours" in hours else np.nan,
                    "seen_by_peer": target in SEEN_BY_PEER})
    return pd.DataFrame(out)


#: how the docs name each compute curve
CURVE_NAMES = {COMPUTE_CURVE: "the 2.0 recipe", DISTILLED_CURVE: "the distilled recipe (distillation weighted 3, "
               "from scratch on every 8th corpus structure)"}


def fit_text(fit: pd.DataFrame, curve: tuple[str, ...] = COMPUTE_CURVE) -> str:
    """The docs paragraph of :func:`compute_fit` over ``curve``."""
    if fit.empty:
        return ""
    parts = []
    for r in fit.itertuples():
        where = (f"reaches the half-gap MAE {r.goal_mae:.4f} at about {r.hours_needed:,.3g} encoder CPU hours, "
                 f"{r.times_ours:,.3g} × 2.0's training" if np.isfinite(r.hours_needed)
                 else "does not fall with compute (no extrapolation)")
        parts.append(f"`{r.target}`{' (seen by SevenNet-0)' if r.seen_by_peer else ''}: MAE ∝ C^{r.exponent:.3f}, "
                     f"which {where}")
    points = fit.points.iloc[0].replace(",", ", ")
    return (f"**Compute fit** ({CURVE_NAMES[curve]} at increasing training compute C — " + points + f"; {len(fit.points.iloc[0].split(','))} "
            "points, a straight line in log–log, so an order-of-magnitude reading, not a forecast): "
            + "; ".join(parts) + ".")


def main() -> None:
    cli = script_parser(__doc__, cache_dir=True)
    cli.add_argument("--n-dev", type=int, default=2000, help="development structures (default: %(default)s)")
    cli.add_argument("--families", default=",".join(f for f in LEVERS if not f.startswith(("short-", "corpus-"))),
                     help="comma-separated, from the declared menus (the short-* runs once studies/distill_study.py "
                          "has exported them)")
    cli.add_argument("--docs-only", action="store_true", help="only rewrite the docs block from scores.csv")
    args = cli.parse_args()
    families = [f for f in args.families.split(",") if f]
    unknown = [f for f in families if f not in LEVERS]
    if unknown:
        raise SystemExit(f"unknown families {unknown}; declared: {list(LEVERS)}")
    if args.docs_only:
        results, costs = ResultRows(OUT / "scores.csv").frame(), ResultRows(OUT / "cost.csv").frame()
    else:
        results = score(args.n_dev, Path(args.cache_dir), families)
        costs = measure_costs(args.n_dev, sorted(set(results.family)))
        training_compute(args.n_dev, sorted(set(results.family)))
    summary, comparisons = closure(results), paired(results)
    summary.to_csv(OUT / "summary.csv", index=False)
    comparisons.to_csv(OUT / "comparisons.csv", index=False)
    compute = ResultRows(OUT / "compute.csv").frame()
    fits = {curve: compute_fit(summary, compute, curve) for curve in (COMPUTE_CURVE, DISTILLED_CURVE)}
    fit = pd.concat([f.assign(curve=",".join(c)) for c, f in fits.items() if len(f)], ignore_index=True) \
        if any(len(f) for f in fits.values()) else pd.DataFrame()
    fit.to_csv(OUT / "compute_fit.csv", index=False)
    block = table(summary, comparisons, args.n_dev, costs)
    choice = development_choice(summary)
    if choice:
        write_block(PAGE, "distilled-choice", choice_table(summary))
    write_block(PAGE, "gap-study", block + "".join("\n\n" + fit_text(f, c) for c, f in fits.items() if len(f))
                + ("\n\n" + choice if choice else ""))
    corpus_curve(summary)
    compute_curve(summary, compute)
    print(summary.to_string(index=False))
    print(comparisons.to_string(index=False))


if __name__ == "__main__":
    main()
