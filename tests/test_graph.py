"""Crystal graphs on hand-checkable crystals, the element table, and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Molecule, Structure

from ssl_featurizer.graph.crystal_graph import GraphConfig, StructureError, build_graph
from ssl_featurizer.graph.elements import BLOCKS, TABLE_BLOCKS, build_table_from_pymatgen, load_element_table


def test_bcc_fe_keeps_the_whole_second_shell():
    a = 2.87
    fe = Structure(Lattice.cubic(a), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    g = build_graph(fe)
    # 8 neighbours at a*sqrt(3)/2, then 6 at a: k=12 falls inside the second shell, so all 6 are kept.
    assert np.bincount(g.edge_index[1]).tolist() == [14, 14]
    for centre in range(2):
        d = np.sort(g.distances[g.edge_index[1] == centre])
        np.testing.assert_allclose(d[:8], a * math.sqrt(3) / 2, rtol=1e-6)
        np.testing.assert_allclose(d[8:], a, rtol=1e-6)


def test_rock_salt_nacl_shells_and_message_direction():
    a = 5.64
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    g = build_graph(nacl)
    z = g.atomic_numbers
    assert np.bincount(g.edge_index[1]).tolist() == [18] * 8  # 6 unlike at a/2, then all 12 like at a/sqrt(2)
    for centre in range(8):
        sel = g.edge_index[1] == centre
        d, src = g.distances[sel], g.edge_index[0][sel]
        near = d < 3.0
        np.testing.assert_allclose(d[near], a / 2, rtol=1e-6)
        np.testing.assert_allclose(d[~near], a / math.sqrt(2), rtol=1e-6)
        assert np.all(z[src[near]] != z[centre])  # the 6 nearest are the other species (sources → centre)
        assert np.all(z[src[~near]] == z[centre])


def test_truncation_at_k_without_ties_and_no_padding():
    s = Structure(Lattice.orthorhombic(3.0, 3.3, 3.7), ["Cu"], [[0, 0, 0]])
    g = build_graph(s, GraphConfig(max_neighbors=3))
    # shells: 2 at 3.0, 2 at 3.3, ...; k=3 lands inside the 3.3 shell, so both are kept
    assert g.n_edges == 4
    g = build_graph(s, GraphConfig(max_neighbors=2))
    assert g.n_edges == 2
    sparse = Structure(Lattice.cubic(7.5), ["Ar"], [[0, 0, 0]])
    g = build_graph(sparse, GraphConfig(cutoff=8.0))
    assert g.n_edges == 6 and np.all(g.edge_index >= 0)  # only real neighbours, no padding edges


def test_element_table_matches_pymatgen_and_is_documented():
    table = load_element_table()
    assert table.n_features == sum(width for _, width in BLOCKS) == len(table.columns)
    assert table.supported[1:].all() and not table.supported[0]
    regenerated = build_table_from_pymatgen()
    for z in (1, 8, 26, 57, 92):
        np.testing.assert_array_equal(table.features[z], regenerated["rows"][str(z)])
    from pymatgen.core.periodic_table import Element

    for z in (1, 6, 26, 83):
        assert table.group(np.array([z]))[0] + 1 == Element.from_Z(z).group
        assert table.period(np.array([z]))[0] + 1 == Element.from_Z(z).row
    doc = load_element_table.__module__
    import importlib

    text = importlib.import_module(doc).__doc__
    for name, _ in BLOCKS:
        assert f"``{name}``" in text


def test_element_table_v2_extends_v1_with_valence_shells_and_separates_every_element():
    v1, v2 = load_element_table("v1"), load_element_table("v2")
    assert v2.n_features == sum(w for _, w in TABLE_BLOCKS["v2"]) == len(v2.columns) == 115
    np.testing.assert_array_equal(v2.features[:, :v1.n_features], v1.features)  # v1's columns come first
    assert v2.columns[:v1.n_features] == v1.columns
    regenerated = build_table_from_pymatgen("v2")
    for z in (1, 26, 64, 92):
        np.testing.assert_array_equal(v2.features[z], regenerated["rows"][str(z)])
    col = {c: i for i, c in enumerate(v2.columns)}
    gd = v2.features[64]  # [Xe].4f7.5d1.6s2
    assert gd[col["valence_f_7"]] == gd[col["valence_d_1"]] == gd[col["valence_s_2"]] == gd[col["valence_p_0"]] == 1
    assert v2.features[31][col["valence_d_10"]] == v2.features[31][col["valence_p_1"]] == 1  # Ga [Ar].3d10.4s2.4p1
    rows = {v2.features[z].tobytes() for z in range(1, 101)}
    assert len(rows) == 100  # in v1, Gd/Tb/Dy/Ho/Er/Sm, Nd/Pr and Eu/Yb share rows
    assert len({v1.features[z].tobytes() for z in range(1, 101)}) < 100
    with pytest.raises(ValueError, match="unknown element table"):
        load_element_table("v9")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]]), "Molecule"),
        (lambda: "NaCl", "got str"),
        (lambda: None, "got NoneType"),
        (lambda: Structure(Lattice.cubic(3), [], []), "no sites"),
        (lambda: Structure(Lattice.cubic(3), [{"Fe": 0.5, "Co": 0.5}], [[0, 0, 0]]), "disordered"),
        (lambda: Structure(Lattice.cubic(3), ["Fe", "Fe"], [[0, 0, 0], [0, 0, 0.001]]), "overlap"),
        (lambda: Structure(Lattice.cubic(3), ["Fe"], [[float("nan"), 0, 0]]), "NaN"),
    ],
)
def test_invalid_inputs_raise_with_reason(make, reason):
    with pytest.raises(StructureError, match=reason):
        build_graph(make())


def test_max_atoms_bound():
    s = Structure(Lattice.cubic(2.87), ["Fe"], [[0, 0, 0]]) * (3, 3, 3)
    with pytest.raises(StructureError, match="max_atoms"):
        build_graph(s, GraphConfig(max_atoms=10))
