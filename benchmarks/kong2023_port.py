"""Verify the kong2023 port: the authors' atom head must recover masked atoms' group and period.

Usage (repo root): python benchmarks/kong2023_port.py [--n 500]
Uses the first N held-out structures of our split (sha1(id) bucket < 2.5 %) of
../shared/data/mp2025/structures.jsonl.gz, masks 15 % of atoms per structure (at least 1; whole 92-vector
zeroed, seeded), and scores the predictive checkpoint's atom head on the last layer, for three message
directions. Writes docs/figures/kong2023_port.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import torch

from ssl_featurizer.encoder.model import CrystalEncoder
from ssl_featurizer.graph.batch import collate_graphs
from ssl_featurizer.graph.crystal_graph import build_graph
from ssl_featurizer.models import kong2023
from ssl_featurizer.models.registry import load_model
from ssl_featurizer.pretrain.tasks import mask_atoms
from ssl_featurizer.pretrain.trainer import split_indices

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--anchors", default=str(ROOT.parent / "shared/anchors/kong2023"))
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/mp2025/structures.jsonl.gz"))
    args = parser.parse_args()
    from pymatgen.core import Structure

    with gzip.open(args.data, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    _, val = split_indices(np.array([r["id"] for r in rows]), 0.025)
    rows = [rows[i] for i in val[: args.n]]
    graphs = [build_graph(Structure(r["lattice"], r["species"], r["frac"]), kong2023.GRAPH) for r in rows]
    pth = Path(args.anchors) / "cgcnn_60k_pred.pth"
    model = load_model(f"kong2023:{pth}")
    head = kong2023.atom_head(pth).double()
    batch = collate_graphs(graphs)
    masked = torch.from_numpy(mask_atoms(batch.batch.numpy(), 0.15, np.random.default_rng(0)))
    table = model.node_table[batch.z]
    group = table[:, 0:19].argmax(1)[masked]
    period = table[:, 19:28].argmax(1)[masked]
    x = table.masked_fill(masked[:, None], 0.0)
    result = {"n_structures": len(rows), "n_masked_atoms": int(masked.sum())}
    for name, direction, flip in [("neighbour -> centre only", "in", False),
                                  ("centre -> neighbour only", "in", True), ("both directions", "both", False)]:
        enc = CrystalEncoder(dataclasses.replace(model.encoder.config, message_direction=direction)).double().eval()
        enc.load_state_dict(model.encoder.state_dict())
        ei = batch.edge_index.flip(0) if flip else batch.edge_index
        with torch.no_grad():
            logits = head(enc(x, ei, batch.distance.double())[-1][masked])
        result[name] = {"group_acc": float((logits[:, :19].argmax(1) == group).float().mean()),
                        "period_acc": float((logits[:, 19:28].argmax(1) == period).float().mean())}
    result["majority baseline"] = {"group_acc": float(np.bincount(group).max() / len(group)),
                                   "period_acc": float(np.bincount(period).max() / len(period))}
    out = ROOT / "docs" / "figures" / "kong2023_port.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
