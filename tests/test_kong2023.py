"""The kong2023 compatibility preset against the authors' released checkpoints (skipped if absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssl_featurizer import SSLStructureFeaturizer
from ssl_featurizer.graph.crystal_graph import GraphConfig, build_graph
from ssl_featurizer.models import kong2023


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
    graphs = [build_graph(s, kong2023.GRAPH) for s in mp_structures]
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "studies" / "archive" / "kong2023_port.py"
    spec = importlib.util.spec_from_file_location("kong2023_port", script)
    port = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(port)
    acc = port.masked_atom_accuracy(anchors / "cgcnn_60k_pred.pth", graphs)
    both, one_way = acc["both directions"]["group_acc"], acc["neighbour -> centre only"]["group_acc"]
    majority = acc["majority baseline"]["group_acc"]
    assert both > 0.85 and both > one_way + 0.25 and one_way > majority - 0.1
