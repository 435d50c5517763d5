"""Write the default model's docs page and curves (docs/model_card.md, docs/figures/pretraining_curves.png).

If the quality gate has been run (``benchmarks/quality_gate.py``), its table is also written into the shipped
card (``card.json`` → ``evaluation``) and the model folder's README. Run from the repo root after exporting a
model: python benchmarks/model_card.py
"""

import json
from pathlib import Path

from ssl_featurizer.models.card import render_card
from ssl_featurizer.models.registry import CARD, resolve_model
from ssl_featurizer.plotting import plot_training_history

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "benchmarks" / "results" / "quality_gate" / "summary.md"
_, directory = resolve_model("default")
card = json.loads((directory / CARD).read_text())
if GATE.exists():
    card["evaluation"] = {
        "title": "Quality gate: against the authors' released checkpoints",
        "text": ("Kernel ridge test MAE (mean ± std over 3 random 80/20 splits; matbench_dielectric: its 5 official "
                 "folds), each model with the layer set (0, 01, 012, 0123) and pooling (mean, mean+std) chosen per "
                 "split by the kernel ridge inner 3-fold CV on the training rows only; the picks are listed under "
                 "each value (spec × splits). Site task: Kong et al.'s 1,806 MAGNDATA sites, splits grouped by "
                 "material. kong2023-pred / -contra: the authors' predictive and contrastive checkpoints loaded "
                 "with the `kong2023:` preset (not shipped)."),
        "table": GATE.read_text().strip(),
        "command": "MATMINER_DATA=../shared/data/matminer python benchmarks/quality_gate.py",
    }
    (directory / CARD).write_text(json.dumps(card, indent=1) + "\n")
(directory / "README.md").write_text(render_card(card))
t = card["training"]
plot_training_history(directory / "history.csv", ROOT / "docs" / "figures" / "pretraining_curves.png",
                      title=f"{card['name']}: {t['epochs']:.0f} epochs on {t['n_train']:,} MP structures "
                            f"({t['n_validation']:,} held out)")
page = render_card(card) + f"""
## Curves

![pretraining curves](figures/pretraining_curves.png)

Per-evaluation values: `pretrained/{card['name']}/{card['version']}/history.csv`.

## Reproduce

```bash
ssl-featurizer pretrain --data ../shared/data/mp2025/structures.jsonl.gz --cache-dir CACHE --out RUN \\
    --epochs {t['optimisation']['epochs']} --batch-size {t['optimisation']['batch_size']} --threads 2   # add --resume after an interruption
ssl-featurizer export --run RUN --cache-dir CACHE --out pretrained/{card['name']}/{card['version']} \\
    --name {card['name']} --version {card['version']} --description "..."
python benchmarks/model_card.py
```
"""
(ROOT / "docs" / "model_card.md").write_text(page)
print("wrote docs/model_card.md" + (" with the quality gate" if GATE.exists() else ""))
