"""Tutorial: pretrain a (tiny) model of your own, export it, and featurize with it.

Runs in seconds: the corpus is the 27 built-in crystals and their 2×1×1 supercells, the encoder has two
layers of width 16 and trains for one epoch. The real recipe is the same code on a real corpus (the
shipped model: 151,051 Materials Project structures, 5 layers × 64, 4 epochs; see the model card).
"""

# --8<-- [start:corpus]
import gzip
import json
from pathlib import Path

from ssl_featurizer.examples import example_structures

work = Path("my_pretraining")
work.mkdir(exist_ok=True)
corpus = work / "corpus.jsonl.gz"  # the format of ../shared/data/mp2025/structures.jsonl.gz
structures = list(example_structures().values())
structures += [s * (2, 1, 1) for s in structures]
with gzip.open(corpus, "wt") as fh:
    for k, s in enumerate(structures):
        row = {"id": f"demo-{k}", "lattice": s.lattice.matrix.tolist(),
               "species": [site.specie.symbol for site in s], "frac": s.frac_coords.tolist()}
        fh.write(json.dumps(row) + "\n")
# --8<-- [end:corpus]

# --8<-- [start:cache]
from ssl_featurizer.training.cache import GraphStore, build_graph_cache

cache_dir = build_graph_cache(corpus, work / "graph_cache", progress=False)  # built once, reused by every epoch
store = GraphStore.load(cache_dir)
print(len(store), "graphs cached")
# --8<-- [end:cache]

# --8<-- [start:train]
from ssl_featurizer.encoder.model import EncoderConfig
from ssl_featurizer.training.trainer import Pretrainer, TrainConfig

config = TrainConfig(
    epochs=1, batch_size=8, warmup_steps=2, val_fraction=0.2, eval_every=5, checkpoint_every=5,
    encoder=EncoderConfig(width=16, n_layers=2),  # the shipped model: width=64, n_layers=5
)
trainer = Pretrainer(store, work / "run", config)
metrics = trainer.train(progress=False)  # after an interruption: trainer.train(resume=True)
print({k: round(v, 3) for k, v in metrics.items()})
# --8<-- [end:train]

# --8<-- [start:export]
from ssl_featurizer.training.export import export_run

card = export_run(work / "run", cache_dir, work / "models" / "tiny-demo" / "0.1",
                  name="tiny-demo", version="0.1", description="tutorial model, 1 epoch on 54 crystals")
print(sorted(p.name for p in (work / "models" / "tiny-demo" / "0.1").iterdir()))
# --8<-- [end:export]

# --8<-- [start:use]
from ssl_featurizer import SSLStructureFeaturizer, load_model

model_dir = str(work / "models" / "tiny-demo" / "0.1")
model = load_model(model_dir)  # sha256-verified like the shipped models
print(model.n_layers, "layers of width", model.width)

f = SSLStructureFeaturizer(model=model_dir, layers="012")
X = f.fit_transform(structures[:5])
print(X.shape)  # (5, 48): 3 layers × width 16
# --8<-- [end:use]
assert X.shape == (5, 48)
