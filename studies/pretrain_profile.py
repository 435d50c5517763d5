"""Where a pretraining step's time goes: the trainer's phases against a bare encoder step on the same batches.

Usage (from the repo root, after a graph cache exists, e.g. the one ``ssl-featurizer pretrain`` built)::

    OMP_NUM_THREADS=1 python studies/pretrain_profile.py --cache-dir CACHE [--steps 60] [--width 64]
        [--threads 1]

Builds the trainer of the registry default's recipe (its card's element table, objectives and batch size; ``--width``
may differ) in a scratch directory and times ``--steps`` training steps of its first epoch, split into

* ``collate``: graph store → batch, masks, the objectives' random draws (``Pretrainer`` data path);
* ``encoder forward`` / ``heads forward``: the encoder, then the objectives' heads and losses;
* ``backward`` and ``optimizer``;

then a **bare step** on the very same (pre-collated) batches: encoder forward, ``sum(h_L ** 2)`` as the loss,
backward, AdamW step. Times are CPU seconds of this thread (``time.thread_time``, robust on a shared machine);
structures per CPU second are reported for both. Results: ``studies/results/pretrain_profile/<label>.json``;
``--docs`` (alone: ``--docs-only``) writes the table of every stored result into docs/pretraining.md.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from common import script_parser

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "studies" / "results" / "pretrain_profile"
PAGE = ROOT / "docs" / "pretraining.md"
PHASES = ("collate", "encoder forward", "heads forward", "backward", "optimizer")


def table(results: list[dict]) -> str:
    """Markdown table of stored profiles: share of each phase, speeds, trainer over bare."""
    head = ["recipe of", "width", "threads", "structures (atoms)", *(f"{p} %" for p in PHASES),
            "trainer structures / CPU s", "bare step structures / CPU s", "trainer / bare time"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in sorted(results, key=lambda r: (r["settings"]["recipe_of"], r["settings"]["width"])):
        total = sum(r["trainer_cpu_s"].values())
        shares = [f"{100 * r['trainer_cpu_s'][p] / total:.1f}" for p in PHASES]
        rows.append("| " + " | ".join([r["settings"]["recipe_of"], str(r["settings"]["width"]),
                                       str(r["settings"]["threads"]), f"{r['structures']:,} ({r['atoms']:,})", *shares,
                                       f"{r['trainer_structures_per_cpu_s']:.0f}",
                                       f"{r['bare_structures_per_cpu_s']:.0f}",
                                       f"{r['trainer_over_bare']:.2f}"]) + " |")
    machine = results[0]["machine"] if results else {}
    return "\n".join(rows) + (f"\n\n<sub>{machine.get('platform', '')}, torch {machine.get('torch', '')}; "
                               "`python studies/pretrain_profile.py --cache-dir CACHE [--width W] --docs`</sub>")


def write_docs(out: Path) -> None:
    """Rewrite the ``pretrain-profile`` block of docs/pretraining.md from every stored result."""
    from docs_blocks import write_block

    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    write_block(PAGE, "pretrain-profile", table(results))


def _phases(trainer, batches: list, rngs: list) -> tuple[dict[str, float], list]:
    """CPU seconds of each phase of the trainer's step over ``batches``, and the collated steps (for the bare step)."""
    totals, steps = dict.fromkeys(PHASES, 0.0), []
    model = trainer.model
    encoder_start = {"t": 0.0}
    encoder_time = {"t": 0.0}  # the encoder's share of the model's forward, timed by hooks around it
    hooks = [model.encoder.register_forward_pre_hook(lambda *_: encoder_start.update(t=time.thread_time())),
             model.encoder.register_forward_hook(
                 lambda *_: encoder_time.update(t=time.thread_time() - encoder_start["t"]))]
    try:
        for idx, rng in zip(batches, rngs):
            t0 = time.thread_time()
            step = trainer.collate(idx, rng)
            t1 = time.thread_time()
            steps.append(step)
            out = model(step)
            t2 = time.thread_time()
            trainer.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            t3 = time.thread_time()
            trainer.optimizer.step()
            t4 = time.thread_time()
            totals["collate"] += t1 - t0
            totals["encoder forward"] += encoder_time["t"]
            totals["heads forward"] += (t2 - t1) - encoder_time["t"]
            totals["backward"] += t3 - t2
            totals["optimizer"] += t4 - t3
    finally:
        for hook in hooks:
            hook.remove()
    return totals, steps


def _bare(trainer, steps: list) -> dict[str, float]:
    """CPU seconds of a bare encoder step (forward, sum of squares, backward, AdamW) on pre-collated steps."""
    import torch

    from ssl_featurizer.encoder.model import CrystalEncoder

    torch.manual_seed(0)
    encoder = CrystalEncoder(trainer.cfg.encoder)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-3)
    totals = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for step in steps:
        t0 = time.thread_time()
        h = encoder(step.x, step.edge_index, step.encoder_distance)[-1]
        loss = (h ** 2).mean()
        t1 = time.thread_time()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.thread_time()
        optimizer.step()
        t3 = time.thread_time()
        totals["forward"] += t1 - t0
        totals["backward"] += t2 - t1
        totals["optimizer"] += t3 - t2
    return totals


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--cache-dir", help="graph cache with edge vectors (ssl-featurizer pretrain)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--label", default=None, help="result file name (default: from the settings)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--docs", action="store_true", help="write the table into docs/pretraining.md")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the docs table from stored results")
    args = parser.parse_args()
    if args.docs_only:
        write_docs(Path(args.out))
        return
    if not args.cache_dir:
        parser.error("--cache-dir is required (a graph cache built by ssl-featurizer pretrain)")

    import numpy as np
    import torch

    from ssl_featurizer.encoder.model import EncoderConfig
    from ssl_featurizer.graph.elements import load_element_table
    from ssl_featurizer.models.registry import load_model
    from ssl_featurizer.training.cache import GraphStore
    from ssl_featurizer.training.objectives import ObjectivesConfig
    from ssl_featurizer.training.trainer import Pretrainer, TrainConfig

    torch.set_num_threads(args.threads)
    model = load_model("default")
    training = model.card["training"]
    table = training["optimisation"]["element_table"]
    store = GraphStore.load(args.cache_dir)
    cfg = TrainConfig(epochs=1, batch_size=training["optimisation"]["batch_size"], element_table=table,
                      threads=args.threads, objectives=ObjectivesConfig.from_dict(training["objectives"]),
                      encoder=EncoderConfig(n_node_features=load_element_table(table).n_features, width=args.width))
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Pretrainer(store, scratch, cfg)
        order = np.random.default_rng([cfg.seed, 0]).permutation(trainer.train_idx)
        n = args.warmup + args.steps
        batches = [order[k * cfg.batch_size:(k + 1) * cfg.batch_size] for k in range(n)]
        rngs = [np.random.default_rng([cfg.seed, 0, k]) for k in range(n)]
        _, warm = _phases(trainer, batches[:args.warmup], rngs[:args.warmup])
        phases, steps = _phases(trainer, batches[args.warmup:], rngs[args.warmup:])
        _bare(trainer, warm)
        bare = _bare(trainer, steps)
    n_structures = sum(len(b) for b in batches[args.warmup:])
    n_atoms = int(sum(store.n_atoms(b).sum() for b in batches[args.warmup:]))
    trainer_s, bare_s = sum(phases.values()), sum(bare.values())
    result = {
        "settings": {"steps": args.steps, "warmup": args.warmup, "width": args.width, "threads": args.threads,
                     "recipe_of": model.name, "batch_size": cfg.batch_size,
                     "objectives": cfg.objectives.to_dict()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
                    "python": sys.version.split()[0]},
        "structures": n_structures, "atoms": n_atoms,
        "trainer_cpu_s": phases, "bare_cpu_s": bare,
        "trainer_structures_per_cpu_s": n_structures / trainer_s, "bare_structures_per_cpu_s": n_structures / bare_s,
        "trainer_over_bare": trainer_s / bare_s,
    }
    label = args.label or f"{model.name.replace('@', '-')}-w{args.width}-t{args.threads}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{label}.json").write_text(json.dumps(result, indent=1))
    print(f"{n_structures} structures ({n_atoms} atoms), CPU seconds per phase:")
    for name, s in phases.items():
        print(f"  trainer {name:16s} {s:7.2f}  ({100 * s / trainer_s:4.1f} %)")
    for name, s in bare.items():
        print(f"  bare    {name:16s} {s:7.2f}")
    print(f"trainer {result['trainer_structures_per_cpu_s']:.1f} structures/CPU s, bare "
          f"{result['bare_structures_per_cpu_s']:.1f} (trainer / bare time {result['trainer_over_bare']:.2f})")
    if args.docs:
        write_docs(out)


if __name__ == "__main__":
    main()
