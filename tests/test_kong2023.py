"""The kong2023 compatibility preset against the authors' released checkpoints (skipped if absent)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ssl_featurizer import SSLStructureFeaturizer
from ssl_featurizer.encoder.model import CrystalEncoder
from ssl_featurizer.graph.batch import collate_graphs
from ssl_featurizer.graph.crystal_graph import GraphConfig, build_graph
from ssl_featurizer.models import kong2023
from ssl_featurizer.models.registry import load_model
from ssl_featurizer.pretrain.tasks import mask_atoms


@pytest.fixture(scope="module")
def anchors(shared_file):
    anchor = shared_file("README.md").parent.parent / "anchors" / "kong2023"
    if not (anchor / "cgcnn_60k_pred.pth").exists():
        pytest.skip(f"authors' checkpoints not found in {anchor}")
    return anchor


def test_kong_graph_convention_pads_to_node_zero():
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(9.0), ["Ar", "Ar"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # 8 neighbours at 7.8 Å
    g = build_graph(s, GraphConfig(neighbor_mode="kong2023"))
    assert np.bincount(g.edge_index[1]).tolist() == [12, 12]  # exactly 12 per atom, padded
    pad = g.distances == 9.0
    assert pad.any() and np.all(g.edge_index[0][pad] == 0)


def test_both_checkpoints_load_and_featurize(anchors, crystals):
    for name in ("cgcnn_60k_pred.pth", "cgcnn_60k_contra.pth"):
        f = SSLStructureFeaturizer(model=f"kong2023:{anchors / name}", layers="012345")
        X = f.fit_transform(list(crystals.values()))
        assert X.shape == (27, 384) and np.isfinite(X).all()


def test_atom_head_recovers_masked_atoms_only_with_both_directions(anchors, mp_structures):
    pth = anchors / "cgcnn_60k_pred.pth"
    model = load_model(f"kong2023:{pth}")
    head = kong2023.atom_head(pth).double()
    batch = collate_graphs([build_graph(s, kong2023.GRAPH) for s in mp_structures])
    masked = torch.from_numpy(mask_atoms(batch.batch.numpy(), 0.15, np.random.default_rng(0)))
    table = model.node_table[batch.z]
    group = table[:, 0:19].argmax(1)[masked]
    x = table.masked_fill(masked[:, None], 0.0)
    acc = {}
    for direction in ("in", "both"):
        enc = CrystalEncoder(dataclasses.replace(model.encoder.config, message_direction=direction)).double().eval()
        enc.load_state_dict(model.encoder.state_dict())
        with torch.no_grad():
            logits = head(enc(x, batch.edge_index, batch.distance.double())[-1][masked])
        acc[direction] = float((logits[:, :19].argmax(1) == group).float().mean())
    majority = np.bincount(group).max() / len(group)
    assert acc["both"] > 0.85 and acc["both"] > acc["in"] + 0.25 and acc["in"] > majority - 0.1
