"""The cell-based orbital field matrix equals matminer's supercell-based one, and leaves its input alone."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("matminer")


def _both(structure):
    from matminer.featurizers.structure import OrbitalFieldMatrix

    from ssl_featurizer.bench.ofm import CellOrbitalFieldMatrix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = np.asarray(CellOrbitalFieldMatrix(flatten=True).featurize(structure.copy()), dtype=float)
        theirs = np.asarray(OrbitalFieldMatrix(flatten=True).featurize(structure.copy()), dtype=float)
    return ours, theirs


def test_equals_matminer_on_real_structures(crystals, mp_structures):
    small = [s for s in [*crystals.values(), *mp_structures] if len(s) <= 6][:8]
    assert len(small) >= 6
    for structure in small:
        ours, theirs = _both(structure)
        assert ours.shape == (1024,)
        assert np.abs(theirs).max() > 0
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12, err_msg=structure.composition.reduced_formula)


def test_does_not_touch_its_input(crystals):
    from ssl_featurizer.bench.ofm import CellOrbitalFieldMatrix

    structure = next(iter(crystals.values()))
    before = structure.copy()
    CellOrbitalFieldMatrix(flatten=True).featurize(structure)
    assert structure == before and len(structure) == len(before)


def test_unflattened_form_is_the_matrix(crystals):
    from ssl_featurizer.bench.ofm import CellOrbitalFieldMatrix

    structure = next(iter(crystals.values()))
    flat = CellOrbitalFieldMatrix(flatten=True).featurize(structure)
    (matrix,) = CellOrbitalFieldMatrix(flatten=False).featurize(structure)
    assert matrix.shape == (32, 32)
    np.testing.assert_array_equal(matrix.flatten(), flat)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=st.floats(3.2, 5.5), c_over_a=st.floats(0.8, 1.6), shift=st.floats(0.05, 0.45),
       elements=st.sampled_from([("Na", "Cl"), ("Mg", "O"), ("Fe", "S"), ("Ti", "N"), ("Cu", "Br")]))
def test_equals_matminer_on_strained_low_symmetry_cells(a, c_over_a, shift, elements):
    """Tetragonal two-atom cells with a free internal coordinate: small cells where minimum images matter."""
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.tetragonal(a, a * c_over_a), list(elements), [[0, 0, 0], [0.5, 0.5, shift]])
    ours, theirs = _both(structure)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
