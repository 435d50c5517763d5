"""The built-in crystals: each has the symmetry, cell contents and density of the crystal it names."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_featurizer.examples import example_structures, space_group

# conventional-cell atom counts of the prototypes
ATOMS = {"diamond": 8, "zincblende": 8, "rock salt": 8, "fluorite": 12, "B2": 2, "perovskite": 5, "rutile": 6,
         "wurtzite": 4, "bcc": 2, "fcc": 4, "hcp": 2}


def test_each_crystal_has_its_space_group_and_cell():
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    crystals = example_structures()
    assert len(crystals) == 27
    for name, s in crystals.items():
        prototype = name.split("(")[1].rstrip(")").removeprefix("cubic ")
        assert len(s) == ATOMS[prototype], name
        assert SpacegroupAnalyzer(s, symprec=1e-3).get_space_group_symbol() == space_group(name), name
        assert name.split()[0] == s.composition.reduced_formula, name
        d = s.distance_matrix + np.eye(len(s)) * 1e3
        assert d.min() > 1.4, f"{name}: atoms {d.min():.2f} Å apart"


@pytest.mark.parametrize("name, density", [("Si (diamond)", 2.33), ("NaCl (rock salt)", 2.16),
                                           ("Fe (bcc)", 7.87), ("Cu (fcc)", 8.96), ("TiO2 (rutile)", 4.25)])
def test_densities_are_the_handbook_values(name, density):
    assert example_structures()[name].density == pytest.approx(density, rel=0.02)


def test_callers_get_copies():
    first = example_structures()
    first["Si (diamond)"].replace_species({"Si": "Ge"})
    assert example_structures()["Si (diamond)"].composition.reduced_formula == "Si"
