"""Write the model cards of the shipped models and the default's docs page (docs/model_card.md, curves).

The default model's card (``card.json`` → ``evaluations``, rendered into its folder's README and the docs page)
carries the development-task choice table (docs/pretraining.md, written by ``studies/choose_default.py``) and
the gate against the authors' checkpoints and CHGNet (docs/kong2023.md, written by ``studies/verdicts.py``);
its inductive control carries the gate. Older versions keep the evaluation they were published with. Run from the
repo root after those two scripts: python studies/model_card.py
"""

import json
import sys
from pathlib import Path

from ssl_featurizer.bench.families import inductive_model
from ssl_featurizer.models.registry import CARD, list_models, resolve_model
from ssl_featurizer.plotting import plot_training_history
from ssl_featurizer.training.card import render_card

sys.path.insert(0, str(Path(__file__).parent))
from common import script_parser
from distilled_gate import MODELS as GATED
from docs_blocks import read_block

ROOT = Path(__file__).resolve().parents[1]
CHOICE = {
    "title": "Development-task choice (the default is chosen here, never on the gate tasks)",
    "text": ("MP-2018 formation energy and PBE gap of 2,000 structures of the JARVIS-Leaderboard train split with no "
             "benchmark twin (by id or by structure); layer set × pooling chosen per split by kernel ridge inner CV "
             "on training rows; test MAE mean ± std over 3 random 80/20 splits; the authors' checkpoints are scored "
             "as references, never candidates."),
    "command": "python studies/choose_default.py --candidates cgcnn-ssl-mp2025@1.2,cgcnn-ssl-mp2025@2.0",
}
GATE = {
    "title": "Gate: against the authors' checkpoints and CHGNet (nested, corrected p-values)",
    "text": ("Benchmark verdicts (docs/benchmarks.md has the protocol and menus): each family's configuration "
             "(descriptor variant × regressor, from menus declared before the run and equal across families) is "
             "chosen per outer split on training rows only; 2 × 5-fold CV (matbench_dielectric: its 5 official folds; "
             "site tasks grouped by material); corrected resampled t-test, Holm-adjusted over every comparison of the "
             "verdict tables; a win needs an adjusted p < 0.05. Run once, on the "
             "chosen default, and published as measured; \"pending\" rows have not finished yet."),
    "command": ("OMP_NUM_THREADS=1 python studies/verdicts.py --families ssl,ssl_inductive,authors,peer --docs && "
                "python studies/model_card.py"),
}

#: the distilled model: shipped beside the default by the gap study's declared development choice, then gated once
DISTILLED, DISTILLED_INDUCTIVE = GATED["distilled"], GATED["distilled_inductive"]
DISTILLED_CHOICE = {
    "title": "Development choice (declared before the runs; never on the gate tasks)",
    "text": ("MP-2018 formation energy and PBE gap of 2,000 structures of the JARVIS-Leaderboard train split with no "
             "benchmark twin; each family's variant chosen per split on training rows; a distilled candidate ships "
             "only if its mean development MAE is below the default's on every target. The formation energy is a "
             "target whose labels the teacher's training data contains. Compute curves and fits of every run: "
             "docs/pretraining.md (figure docs/figures/gap_study_compute.png)."),
    "command": "OMP_NUM_THREADS=1 python studies/distill_study.py --every 8 --runs long_distilled_w3 && "
               "python studies/gap_study.py --families long-control,long-distilled_w3",
}
DISTILLED_GATE = {
    "title": "Gate (run once, on the model the development choice shipped; resumable)",
    "text": ("The verdict benchmark's protocol (docs/benchmarks.md): the ssl menu on this model and on its inductive "
             "control, each configuration chosen per outer split on training rows only, against the authors' "
             "checkpoints, the hand-built descriptors, the peer encoders and the default; corrected resampled "
             "t-test, Holm-adjusted over every comparison of the gate. Published as measured."),
    "command": ("OMP_NUM_THREADS=1 python studies/distilled_gate.py --families distilled && "
                "python studies/model_card.py"),
}


def main() -> None:
    script_parser(__doc__).parse_args()
    default_name, directory = resolve_model("default")
    sections = {default_name: [{**CHOICE, "table": read_block(ROOT / "docs" / "pretraining.md", "choice")},
                               {**GATE, "table": read_block(ROOT / "docs" / "kong2023.md", "verdicts")}],
                inductive_model(): [{**GATE, "table": read_block(ROOT / "docs" / "kong2023.md", "verdicts")}],
                DISTILLED: [{**DISTILLED_CHOICE, "table": read_block(ROOT / "docs" / "pretraining.md", "distilled-choice")},
                            {**DISTILLED_GATE, "table": read_block(ROOT / "docs" / "pretraining.md", "distilled-gate")}],
                DISTILLED_INDUCTIVE: [{**DISTILLED_GATE,
                                       "table": read_block(ROOT / "docs" / "pretraining.md", "distilled-gate")}]}
    for name in list_models():  # every shipped version's README re-rendered from its card
        _, version_dir = resolve_model(name)
        version_card = json.loads((version_dir / CARD).read_text())
        if name in sections:
            version_card["evaluations"] = sections[name]
            (version_dir / CARD).write_text(json.dumps(version_card, indent=1) + "\n")
        (version_dir / "README.md").write_text(render_card(version_card))
    card = json.loads((directory / CARD).read_text())
    t = card["training"]
    plot_training_history(directory / "history.csv", ROOT / "docs" / "figures" / "pretraining_curves.png",
                          title=f"{card['name']}: {t['epochs']:.0f} epochs on {t['n_train']:,} MP structures "
                                f"({t['n_validation']:,} held out)")
    rows = [("| version | element table | corpus structures refused | train / held out | epochs | train time | "
            "held-out group / period / element / edge acc |"), "|---|---|---|---|---|---|---|"]
    for name in list_models():
        c = json.loads((resolve_model(name)[1] / CARD).read_text())
        tr, m = c["training"], c["metrics"]
        rows.append(f"| {name}{' (default)' if name == default_name else ''} | `{c.get('element_table', 'v1')}` "
                    f"({c['encoder']['n_node_features']} columns) | {tr['corpus_errors']} | {tr['n_train']:,} / "
                    f"{tr['n_validation']:,} | {tr['epochs']:.0f} | {tr['train_seconds'] / 60:.1f} min "
                    f"({tr['structures_per_second']:.0f} structures/s, {tr['optimisation']['threads']} torch threads) | "
                    + " / ".join(f"{m[f'val_{k}_acc']:.3f}" for k in ("group", "period", "element", "edge")) + " |")
    versions = "\n".join(rows) + (
        "\n\nStructures refused: since 1.0 was trained, graph building refuses a structure with an atom that has no "
        "neighbour within the cutoff (its descriptor would carry no environment; docs/reliability.md). The 142 such "
        "corpus entries (isolated atoms or molecules in large vacuum cells, e.g. mp-623782 at 947 Å³/atom) are "
        "therefore not in 1.1's training data. Train times are on this 2-core machine while benchmark jobs ran "
        "alongside, so compare them with care. The default is chosen on development tasks "
        "([pretraining.md](pretraining.md#which-node-table-and-which-model-is-the-default)).")
    page = render_card(card) + f"""
## Curves

![pretraining curves](figures/pretraining_curves.png)

Per-evaluation values: `pretrained/{card['name']}/{card['version']}/history.csv`.

## Versions

{versions}
"""
    (ROOT / "docs" / "model_card.md").write_text(page)
    print("wrote docs/model_card.md and the shipped models' READMEs")


if __name__ == "__main__":
    main()
