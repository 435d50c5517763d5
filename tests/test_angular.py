"""The bond-angle moments (AngularMoments) and an encoder that reads them, from the operator to the featurizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssl_featurizer.encoder.layers import AngularMoments, monomial_exponents
from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
from ssl_featurizer.graph.batch import collate_graphs
from ssl_featurizer.graph.crystal_graph import build_graph


def brute_force(op: AngularMoments, x, edge_index, gauss, vectors) -> torch.Tensor:
    """The invariants by their definition: every pair of bonds at every atom, cos^n of the angle between them."""
    with torch.no_grad():
        w = torch.nn.functional.silu(op.lin_x(x)[edge_index[0]] + op.lin_g(gauss))
    unit = vectors / vectors.norm(dim=1, keepdim=True)
    out = torch.zeros(x.shape[0], op.angular_channels, op.order + 1, dtype=torch.float64)
    for i in range(x.shape[0]):
        mine = torch.nonzero(edge_index[1] == i).flatten()
        cos = unit[mine] @ unit[mine].T
        for n in range(op.order + 1):
            out[i, :, n] = torch.einsum("ja,ka,jk->a", w[mine], w[mine], cos**n) / len(mine) ** 2
    return out.reshape(x.shape[0], -1)


@pytest.fixture(scope="module")
def graph(crystals):
    return build_graph(crystals["TiO2 (rutile)"], vectors=True)  # distorted octahedra: every degree non-trivial


def small_operator(seed: int = 0) -> AngularMoments:
    torch.manual_seed(seed)
    return AngularMoments(channels=8, edge_dim=41, angular_channels=3, order=4).double()


def test_monomials_count_and_coefficients():
    exps, coefs, degrees = monomial_exponents(4)
    assert len(exps) == 35 and degrees == sorted(degrees)
    for n in range(5):  # multinomial coefficients of degree n sum to 3^n (the expansion of (1 + 1 + 1)^n)
        assert sum(c for c, d in zip(coefs, degrees) if d == n) == 3**n


def test_invariants_are_the_sum_over_bond_pairs(graph):
    op = small_operator()
    g = collate_graphs([graph])
    x = torch.randn(g.z.shape[0], 8, dtype=torch.float64)
    gauss = torch.rand(g.edge_index.shape[1], 41, dtype=torch.float64)
    vectors = g.vector.double()
    with torch.no_grad():
        fast = op.invariants(x, g.edge_index, gauss, vectors)
    torch.testing.assert_close(fast, brute_force(op, x, g.edge_index, gauss, vectors), rtol=1e-9, atol=1e-12)


def test_coordination_shapes_are_told_apart():
    """Uniform weights: the degree-3 moment vanishes for an octahedron but not for a tetrahedron, and the degree-4
    one differs between an octahedron and a cube (what degree ≤ 2 cannot tell: all three are isotropic)."""
    op = small_operator()
    shapes = {"tetrahedron": [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]],
              "octahedron": [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]],
              "cube": [[a, b, c] for a in (1, -1) for b in (1, -1) for c in (1, -1)]}
    moments = {}
    for name, dirs in shapes.items():
        v = torch.tensor(dirs, dtype=torch.float64)
        n = len(dirs)
        edge_index = torch.stack([torch.arange(1, n + 1), torch.zeros(n, dtype=torch.long)])
        with torch.no_grad():
            op.lin_x.weight.zero_(), op.lin_x.bias.fill_(1.0), op.lin_g.weight.zero_()
            moments[name] = op.invariants(torch.zeros(n + 1, 8, dtype=torch.float64), edge_index,
                                          torch.zeros(n, 41, dtype=torch.float64), v)[0, :5]
    for m in moments.values():  # isotropic to degree 2: |M1|^2 = 0 and |M2|^2 = 1/3 of |M0|^2
        assert abs(float(m[1])) < 1e-12 and abs(float(m[2] - m[0] / 3)) < 1e-12
    assert abs(float(moments["octahedron"][3])) < 1e-12 < abs(float(moments["tetrahedron"][3]))
    assert abs(float(moments["octahedron"][4] - moments["cube"][4])) > 1e-3


def random_rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    return q * np.sign(np.diag(r))  # orthogonal; a reflection when det = -1, which must not matter either


def angular_encoder() -> CrystalEncoder:
    torch.manual_seed(1)
    return CrystalEncoder(EncoderConfig(n_node_features=79, width=16, n_layers=2, angular_channels=4)).double().eval()


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_encoder_is_invariant_to_rotating_and_reflecting_the_crystal(crystals, seed):
    from pymatgen.core import Lattice, Structure

    from ssl_featurizer.graph.elements import load_element_table

    s = list(crystals.values())[seed % len(crystals)]
    rot = random_rotation(seed)
    turned = Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords)
    enc, table = angular_encoder(), torch.from_numpy(load_element_table().features).double()
    out = []
    for struct in (s, turned):
        g = collate_graphs([build_graph(struct, vectors=True)])
        with torch.no_grad():
            out.append(enc(table[g.z], g.edge_index, g.distance.double(), vectors=g.vector.double())[-1])
    torch.testing.assert_close(out[0], out[1], rtol=1e-4, atol=1e-5)  # float32 vectors in the graph


def test_encoder_refuses_to_run_without_vectors(graph):
    enc = angular_encoder()
    g = collate_graphs([graph])
    with pytest.raises(ValueError, match="needs the edge vectors"):
        enc(torch.zeros(g.z.shape[0], 79, dtype=torch.float64), g.edge_index, g.distance.double())


def test_distance_only_cards_read_as_before():
    assert "angular_channels" not in EncoderConfig().to_dict()
    assert EncoderConfig(angular_channels=8).to_dict()["angular_channels"] == 8
    assert not CrystalEncoder(EncoderConfig(width=8, n_layers=1)).needs_vectors


def test_angular_model_pretrains_exports_and_featurizes(tmp_path, crystals, capsys):
    """The user path: pretrain with --angular-channels, export, load by folder; the featurizer builds graphs with
    vectors, the card says what the encoder reads, and rotating a crystal changes no descriptor."""
    import gzip

    from pymatgen.core import Lattice, Structure

    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.cli import main

    corpus = tmp_path / "tiny.jsonl.gz"
    with gzip.open(corpus, "wt") as fh:
        for k, s in enumerate(list(crystals.values()) * 2):
            fh.write(json.dumps({"id": f"x-{k}", "lattice": s.lattice.matrix.tolist(),
                                 "species": [e.symbol for e in s.species], "frac": s.frac_coords.tolist()}) + "\n")
    run, cache, model_dir = tmp_path / "run", tmp_path / "cache", tmp_path / "model"
    assert main(["pretrain", "--data", str(corpus), "--cache-dir", str(cache), "--out", str(run), "--epochs", "1",
                 "--batch-size", "8", "--width", "16", "--depth", "2", "--val-fraction", "0.2", "--warmup-steps", "2",
                 "--angular-channels", "4", "--denoise-sigma", "0.1"]) == 0
    assert json.loads((cache / "manifest.json").read_text())["vectors"] is True
    assert main(["export", "--run", str(run), "--cache-dir", str(cache), "--out", str(model_dir),
                 "--name", "tiny-angular", "--version", "0.0"]) == 0
    card = json.loads((model_dir / "card.json").read_text())
    assert card["encoder"]["angular_channels"] == 4
    readme = (model_dir / "README.md").read_text()
    assert "bond-angle moments (4 channels" in readme and "--angular-channels 4" in readme
    structures = list(crystals.values())[:4]
    rot = random_rotation(7)
    turned = [Structure(Lattice(s.lattice.matrix @ rot.T), s.species, s.frac_coords) for s in structures]
    f = SSLStructureFeaturizer(model=str(model_dir), layers="012")
    X, Y = f.fit_transform(structures), f.fit_transform(turned)
    assert X.shape == (4, 48) and np.isfinite(X).all()
    np.testing.assert_allclose(X, Y, rtol=1e-3, atol=1e-4)
    assert np.abs(X[:, 16:]).sum() > 0
