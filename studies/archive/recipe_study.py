"""Which self-supervised recipe to ship? Short pretraining runs compared on a task none of them sees.

Every recipe is pretrained for the same number of steps on the same first ``--limit`` corpus structures, then
judged on a *development* task that is not one of the visible benchmark tasks: MP-2018 (MEGNet) formation energy
and PBE band gap of ``--n-dev`` structures drawn from the JARVIS-Leaderboard *train* split of
``../shared/data/tasks/mp2018_megnet_labels.csv.gz`` (joined to the corpus by id; no row matches a benchmark
structure by id or by structure, see ``studies/overlap.py``), kernel ridge on ``ssl:012``
with the benchmark protocol (3 random 80/20 splits). Held-out masked-atom accuracies are reported too.

Resumable: runs, exports and scores are skipped when present. Writes ``docs/figures/recipe_study.csv``.
Archived (studies/archive/README.md); the development task is :func:`project_tasks.dev_task`.

    python studies/archive/recipe_study.py --work ../study   # ~1 h on 2 busy cores with the defaults
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/: the helpers below
from common import ResultRows, script_parser
from docs_blocks import write_block
from project_tasks import corpus_file, dev_task, shared_data_dir

from ssl_featurizer.encoder.model import EncoderConfig
from ssl_featurizer.graph.crystal_graph import GraphConfig
from ssl_featurizer.training.cache import GraphStore, build_graph_cache, views_cache_dir
from ssl_featurizer.training.export import export_run
from ssl_featurizer.training.objectives import ObjectivesConfig
from ssl_featurizer.training.objectives.contrastive import ContrastiveParams
from ssl_featurizer.training.objectives.edge_bins import EdgeBinsParams
from ssl_featurizer.training.objectives.masked_atoms import MaskedAtomsParams
from ssl_featurizer.training.trainer import Pretrainer, TrainConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPES = {
    # Kong et al.'s predictive recipe: masked group + period, edge distance bins
    "pred-kong": ObjectivesConfig(enabled={"masked_atoms": MaskedAtomsParams(element=False),
                                           "edge_bins": EdgeBinsParams()}),
    # + the masked element itself (the recipe of cgcnn-ssl-mp2025@1.0)
    "pred-element": ObjectivesConfig(),
    # contrastive only (NT-Xent between cell and doubled supercell, both masked)
    "contrastive": ObjectivesConfig(enabled={"contrastive": ContrastiveParams()}),
    # everything
    "pred-element+contrastive": ObjectivesConfig(enabled={"masked_atoms": MaskedAtomsParams(),
                                                          "edge_bins": EdgeBinsParams(),
                                                          "contrastive": ContrastiveParams()}),
}


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--work", required=True, help="folder for caches, runs and exported models")
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-dev", type=int, default=2000)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not shared_data_dir().is_dir():
        raise SystemExit(f"{shared_data_dir()} is absent: the recipe study needs the corpus and the MP-2018 labels")
    from ssl_featurizer.bench import run_benchmark

    work = Path(args.work)
    corpus = corpus_file()
    store = GraphStore.load(build_graph_cache(corpus, work / "cache", GraphConfig(), n_jobs=2, limit=args.limit))
    views = None
    tasks = dev_task(args.n_dev)
    out_csv = ROOT / "docs" / "figures" / "recipe_study.csv"
    results = ResultRows(out_csv)
    done = results.done("recipe")
    for name in args.recipes.split(","):
        if (name,) in done:
            continue
        tcfg = RECIPES[name]
        if "contrastive" in tcfg.enabled and views is None:
            views = GraphStore.load(build_graph_cache(corpus, views_cache_dir(work / "cache"), GraphConfig(), n_jobs=2,
                                                      limit=args.limit, supercell=True))
        cfg = TrainConfig(epochs=args.epochs, threads=args.threads, warmup_steps=50, encoder=EncoderConfig(),
                          objectives=tcfg)
        trainer = Pretrainer(store, work / "runs" / name, cfg, views=views)
        metrics = trainer.train(resume=True)
        model_dir = work / "models" / name
        export_run(work / "runs" / name, work / "cache", model_dir, f"study-{name}", "0", f"recipe study: {name}",
                   views_dir=views_cache_dir(work / "cache"))
        row = {"recipe": name, "steps": trainer.global_step, "train_seconds": round(trainer.train_seconds, 1),
               **{k: round(v, 4) for k, v in metrics.items() if k.endswith("_acc")}}
        for target, task in tasks.items():
            res = run_benchmark(task, ["ssl:012"], regressors=("krr",), seeds=3, model=str(model_dir),
                                progress=False, n_jobs=1)
            row[f"{target}_mae"] = round(float(res.mae.mean()), 4)
            row[f"{target}_mae_std"] = round(float(res.mae.std()), 4)
        results.add([row])
        print(json.dumps(row), flush=True)
    table = results.frame()
    print(table.to_string(index=False))
    write_docs(table)


def write_docs(table: pd.DataFrame) -> None:
    """The study's table into docs/pretraining.md (between the study markers)."""
    header = ("| recipe | train s | held-out group / period / element / edge acc | contrastive acc | "
              "MP-2018 e_form MAE (eV/atom) | MP-2018 PBE gap MAE (eV) |")
    lines = [header, "|---|---|---|---|---|---|"]
    for r in table.to_dict("records"):
        accs = " / ".join(f"{r[k]:.3f}" if pd.notna(r.get(k)) else "—"
                          for k in ("val_group_acc", "val_period_acc", "val_element_acc", "val_edge_acc"))
        contra = f"{r['val_contrastive_acc']:.3f}" if pd.notna(r.get("val_contrastive_acc")) else "—"
        lines.append(f"| {r['recipe']} | {r['train_seconds']:.0f} | {accs} | {contra} | "
                     f"{r['e_form_mae']:.4f} ± {r['e_form_mae_std']:.4f} | {r['gap_pbe_mae']:.4f} ± "
                     f"{r['gap_pbe_mae_std']:.4f} |")
    write_block(ROOT / "docs" / "pretraining.md", "study", "\n".join(lines))


if __name__ == "__main__":
    main()
