"""Data-parallel pretraining: `torchrun --nproc_per_node 2` (gloo, CPU) gives the single-process result."""

from __future__ import annotations

import csv
import gzip
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from ssl_featurizer.encoder.model import EncoderConfig
from ssl_featurizer.training.cache import GraphStore
from ssl_featurizer.training.trainer import Pretrainer, TrainConfig, load_checkpoint, split_indices


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def history(run):
    with (run / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, crystals):
    """The built-in crystals and 2×1×1 supercells as a JSON-lines corpus (the format of ../shared/data/mp2025)."""
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl.gz"
    structures = list(crystals.values()) + [s * (2, 1, 1) for s in crystals.values()]
    with gzip.open(path, "wt") as fh:
        for k, s in enumerate(structures):
            fh.write(json.dumps({"id": f"x-{k}", "lattice": s.lattice.matrix.tolist(),
                                 "species": [e.symbol for e in s.species], "frac": s.frac_coords.tolist()}) + "\n")
    return path, [f"x-{k}" for k in range(len(structures))]


def test_torchrun_two_ranks_equal_one_process(corpus, tmp_path):
    path, ids = corpus
    n_train = len(split_indices(np.array(ids), 0.2)[0])
    # a batch size whose last batch holds one structure: rank 1 gets an empty shard there
    batch_size = next(b for b in range(7, n_train) if n_train % b == 1)
    args = ["pretrain", "--data", str(path), "--cache-dir", str(tmp_path / "cache"), "--epochs", "2",
            "--batch-size", str(batch_size), "--val-fraction", "0.2", "--warmup-steps", "3", "--checkpoint-every",
            "3", "--eval-every", "4", "--width", "16", "--depth", "2", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), "-m", "ssl_featurizer.cli", *args, "--out", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("val_loss") == 1  # only rank 0 reports

    cfg = TrainConfig(epochs=2, batch_size=batch_size, val_fraction=0.2, warmup_steps=3, checkpoint_every=3,
                      eval_every=4, threads=1, encoder=EncoderConfig(width=16, n_layers=2))
    store = GraphStore.load(tmp_path / "cache")  # built once, by rank 0
    single = Pretrainer(store, tmp_path / "single", cfg)
    metrics = single.train(progress=False)

    ddp_state = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ddp_state["global_step"] == single.global_step == 2 * single.steps_per_epoch
    # float32 sums in another order: Adam turns a last-digit difference of a near-zero gradient into up to one
    # learning-rate step (2e-3) of the parameter, so weights agree to a fraction of lr, losses to ~1e-6
    for part, module in (("encoder", single.encoder), ("heads", single.heads)):
        for key, value in module.state_dict().items():
            diff = float((ddp_state[part][key].to(value.dtype) - value).abs().max())
            assert diff <= 0.05 * cfg.lr * (1 + float(value.abs().max())), (part, key, diff)
    rows_ddp, rows_single = history(tmp_path / "ddp"), history(tmp_path / "single")
    assert [r["step"] for r in rows_ddp] == [r["step"] for r in rows_single]  # one writer, same schedule
    for a, b in zip(rows_ddp, rows_single):
        for key in ("train_loss", "val_loss", "val_group_acc", "val_element_acc", "val_edge_acc", "lr"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-5), (a["step"], key)
    assert float(rows_ddp[-1]["val_loss"]) == pytest.approx(metrics["val_loss"], rel=1e-5)

    resumed = Pretrainer(store, tmp_path / "ddp", cfg)  # a data-parallel checkpoint resumes in one process
    resumed.load_state_dict(ddp_state)
    assert resumed.evaluate()["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)
