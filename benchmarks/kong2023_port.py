"""Verify the kong2023 port: the authors' atom head must recover masked atoms' group and period.

Usage (repo root): python benchmarks/kong2023_port.py [--n 500]
Uses the first N held-out structures of our split (sha1(id) bucket < 2.5 %) of
../shared/data/mp2025/structures.jsonl.gz, masks 15 % of atoms per structure (at least 1; whole 92-vector
zeroed, seeded), and scores the predictive checkpoint's atom head on the last layer, for three message
directions. Writes docs/figures/kong2023_port.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from ssl_featurizer.graph.crystal_graph import build_graph
from ssl_featurizer.models import kong2023
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
    result = kong2023.masked_atom_accuracy(Path(args.anchors) / "cgcnn_60k_pred.pth", graphs)
    out = ROOT / "docs" / "figures" / "kong2023_port.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
