"""The encoder operators against PyG's reference implementation, and layer shapes."""

from __future__ import annotations

import torch
from torch_geometric.nn import CGConv as PyGCGConv

from ssl_featurizer.encoder.layers import CGConv, GaussianExpansion
from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig


def test_cgconv_equals_pyg():
    torch.manual_seed(0)
    n, e, c, d = 50, 400, 16, 8
    x, ei, ea = torch.randn(n, c), torch.randint(0, n, (2, e)), torch.randn(e, d)
    ours = CGConv(c, d)
    ref = PyGCGConv(c, d, aggr="add")
    ref.load_state_dict(ours.state_dict())  # same parameter layout
    torch.testing.assert_close(ours(x, ei, ea), ref(x, ei, ea), atol=1e-5, rtol=1e-5)


def test_gaussian_expansion_grid():
    g = GaussianExpansion(0.0, 8.0, 41)
    out = g(torch.tensor([0.0, 4.0, 8.0]))
    assert out.shape == (3, 41)
    assert torch.equal(out.argmax(1), torch.tensor([0, 20, 40]))
    assert abs(g.width - 0.2) < 1e-12


def test_encoder_returns_every_layer():
    cfg = EncoderConfig(n_node_features=10, width=12, n_layers=3)
    enc = CrystalEncoder(cfg).eval()
    x, ei, dist = torch.randn(7, 10), torch.randint(0, 7, (2, 30)), torch.rand(30) * 8
    hs = enc(x, ei, dist)
    assert len(hs) == 4 and all(h.shape == (7, 12) for h in hs)
    both = CrystalEncoder(EncoderConfig(n_node_features=10, width=12, n_layers=3, message_direction="both")).eval()
    both.load_state_dict(enc.state_dict())
    assert not torch.allclose(both(x, ei, dist)[1], hs[1])


def test_inference_shortcuts_equal_the_training_path(crystals):
    """Frozen inference folds the edge embedding, works in place and stops at ``upto``: same numbers."""
    from ssl_featurizer.graph.batch import collate_graphs
    from ssl_featurizer.graph.crystal_graph import build_graph
    from ssl_featurizer.models.registry import load_model

    model = load_model()
    batch = collate_graphs([build_graph(s) for s in list(crystals.values())[:8]])
    args = (model.node_table[batch.z], batch.edge_index, batch.distance.double())
    with torch.enable_grad():  # the plain path: embedding2 applied per edge, out-of-place CGConv
        reference = [h.detach() for h in model.encoder(*args)]
    with torch.no_grad():
        fast = model.encoder(*args)
        partial = model.encoder(*args, upto=2)
    assert len(fast) == len(reference) and len(partial) == 3
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(partial, fast):
        assert torch.equal(a, b)
