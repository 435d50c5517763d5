"""Verify the kong2023 port: the authors' atom head must recover masked atoms' group and period.

Usage (repo root): python studies/archive/kong2023_port.py [--n 500]
Uses the first N held-out structures of our split (sha1(id) bucket < 2.5 %) of
../shared/data/mp2025/structures.jsonl.gz, masks 15 % of atoms per structure (at least 1; whole 92-vector
zeroed, seeded), and scores the predictive checkpoint's atom head on the last layer, for three message
directions. Writes docs/figures/kong2023_port.json. Archived (studies/archive/README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # studies/: the helpers below
from common import corpus_rows, corpus_structure, script_parser
from project_tasks import anchors_dir

from ssl_featurizer.graph.crystal_graph import build_graph
from ssl_featurizer.models import kong2023
from ssl_featurizer.training.trainer import split_indices

ROOT = Path(__file__).resolve().parents[2]

DIRECTIONS = {  # name → (message_direction, reverse the edge list first)
    "neighbour -> centre only": ("in", False),
    "centre -> neighbour only": ("in", True),
    "both directions": ("both", False),
}


@torch.no_grad()
def masked_atom_accuracy(pth: str | Path, graphs: list, mask_fraction: float = 0.15, seed: int = 0) -> dict:
    """The predictive checkpoint's atom head on masked atoms, for every message direction.

    ``graphs`` must be built with ``kong2023.GRAPH``. Masks ~``mask_fraction`` of each structure's atoms (at
    least one; whole 92-vector zeroed) and returns group/period accuracies per direction plus the
    majority-class baseline.
    """
    import dataclasses

    from ssl_featurizer.encoder.model import CrystalEncoder
    from ssl_featurizer.graph.batch import collate_graphs
    from ssl_featurizer.models.registry import load_model
    from ssl_featurizer.training.objectives import mask_atoms

    model = load_model(f"{kong2023.PREFIX}{pth}")
    head = kong2023.atom_head(pth).double()
    batch = collate_graphs(graphs)
    masked = torch.from_numpy(mask_atoms(batch.batch.numpy(), mask_fraction, np.random.default_rng(seed)))
    table = model.node_table[batch.z]
    group, period = table[:, 0:19].argmax(1)[masked], table[:, 19:28].argmax(1)[masked]
    x = table.masked_fill(masked[:, None], 0.0)
    result: dict = {"n_structures": len(graphs), "n_masked_atoms": int(masked.sum())}
    for name, (direction, flip) in DIRECTIONS.items():
        enc = CrystalEncoder(dataclasses.replace(model.encoder.config, message_direction=direction)).double().eval()
        enc.load_state_dict(model.encoder.state_dict())
        ei = batch.edge_index.flip(0) if flip else batch.edge_index
        logits = head(enc(x, ei, batch.distance.double())[-1][masked])
        result[name] = {"group_acc": float((logits[:, :19].argmax(1) == group).double().mean()),
                        "period_acc": float((logits[:, 19:28].argmax(1) == period).double().mean())}
    result["majority baseline"] = {"group_acc": float(np.bincount(group).max() / len(group)),
                                   "period_acc": float(np.bincount(period).max() / len(period))}
    return result


def main() -> None:
    parser = script_parser(__doc__, corpus=True)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--anchors", default=str(anchors_dir()))
    args = parser.parse_args()
    rows = list(corpus_rows(args.data))
    _, val = split_indices(np.array([r["id"] for r in rows]), 0.025)
    graphs = [build_graph(corpus_structure(rows[i]), kong2023.GRAPH) for i in val[: args.n]]
    result = masked_atom_accuracy(Path(args.anchors) / "cgcnn_60k_pred.pth", graphs)
    out = ROOT / "docs" / "figures" / "kong2023_port.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
