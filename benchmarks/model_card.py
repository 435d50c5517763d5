"""Write the default model's docs page and curves (docs/model_card.md, docs/figures/pretraining_curves.png).

Run from the repo root after exporting a model: python benchmarks/model_card.py
"""

from pathlib import Path

from ssl_featurizer.models.card import render_card
from ssl_featurizer.models.registry import load_model, resolve_model
from ssl_featurizer.plotting import plot_training_history

ROOT = Path(__file__).resolve().parents[1]
model = load_model("default")
_, directory = resolve_model("default")
t = model.card["training"]
plot_training_history(directory / "history.csv", ROOT / "docs" / "figures" / "pretraining_curves.png",
                      title=f"{model.name}: {t['epochs']:.0f} epochs on {t['n_train']:,} MP structures "
                            f"({t['n_validation']:,} held out)")
page = render_card(model.card) + f"""
## Curves

![pretraining curves](figures/pretraining_curves.png)

Per-evaluation values: `pretrained/{model.card['name']}/{model.card['version']}/history.csv`.

## Reproduce

```bash
ssl-featurizer pretrain --data ../shared/data/mp2025/structures.jsonl.gz --cache-dir CACHE --out RUN \\
    --epochs {t['optimisation']['epochs']} --batch-size {t['optimisation']['batch_size']} --threads 2   # add --resume after an interruption
ssl-featurizer export --run RUN --cache-dir CACHE --out pretrained/{model.card['name']}/{model.card['version']} \\
    --name {model.card['name']} --version {model.card['version']} --description "..."
python benchmarks/model_card.py
```

Downstream comparisons with the authors' released checkpoints follow in the benchmark pages.
"""
(ROOT / "docs" / "model_card.md").write_text(page)
print("wrote docs/model_card.md")
