"""Ordered approximants of disordered structures, so that a structure with partial occupancies can be featurized.

The descriptor is defined for ordered crystals (one element per site). A disordered structure (an alloy, a
solid solution, a partially occupied site) is made ordered by choosing a supercell in which every site's
occupancies become whole numbers of atoms and then one arrangement of the atoms on those sites: the one of lowest
electrostatic (Ewald) energy when the structure carries oxidation states, otherwise the first one pymatgen's
``OrderDisorderedStructureTransformation`` enumerates (with no charges every arrangement has the same energy).
It is *one* approximant, not an average over the disorder: for a random alloy, featurize several and average if
the arrangement matters to you.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: largest supercell (in atoms) :func:`ordered_approximant` builds by default
MAX_APPROXIMANT_ATOMS = 200


def _multiplier(structure: Structure, max_denominator: int) -> int:
    """The smallest number of cells in which every site's occupancies are whole numbers of atoms."""
    denominators = [Fraction(float(occ)).limit_denominator(max_denominator).denominator
                    for site in structure for occ in site.species.values()]
    return math.lcm(*denominators) if denominators else 1


def _scaling(structure: Structure, m: int) -> list[int]:
    """A diagonal supercell of ``m`` cells, as close to isotropic as the prime factors of ``m`` allow."""
    lengths = list(structure.lattice.abc)
    scale = [1, 1, 1]
    factors, rest, p = [], m, 2
    while rest > 1:
        while rest % p == 0:
            factors.append(p)
            rest //= p
        p += 1
    for f in sorted(factors, reverse=True):
        axis = min(range(3), key=lambda i: lengths[i] * scale[i])
        scale[axis] *= f
    return scale


def ordered_approximant(structure: Structure, max_atoms: int = MAX_APPROXIMANT_ATOMS,
                        max_denominator: int = 12) -> Structure:
    """An ordered supercell of a disordered structure (module docstring); an ordered structure is returned as is.

    Args:
        structure: a pymatgen ``Structure`` with partial occupancies (with or without oxidation states).
        max_atoms: refuse when the supercell would hold more atoms than this.
        max_denominator: occupancies are read as fractions with at most this denominator (0.333 → 1/3).

    Returns:
        A new ordered ``Structure`` (oxidation states kept if the input had them; zero charges are removed).

    Raises:
        ValueError: the supercell needed would exceed ``max_atoms``.
    """
    from pymatgen.core import Species
    from pymatgen.transformations.standard_transformations import OrderDisorderedStructureTransformation

    if structure.is_ordered:
        return structure
    m = _multiplier(structure, max_denominator)
    n_atoms = round(sum(sum(site.species.values()) for site in structure) * m)
    if len(structure) * m > max_atoms:
        raise ValueError(f"an ordered approximant needs {m} cells ({len(structure) * m} sites, {n_atoms} atoms), more "
                         f"than max_atoms={max_atoms}; raise max_atoms or round the occupancies")
    supercell = structure.copy()
    supercell.make_supercell(_scaling(structure, m))
    charged = any(isinstance(sp, Species) for site in structure for sp in site.species)
    if not charged:  # the transformation needs oxidation states; with none, every arrangement is equivalent
        supercell.add_oxidation_state_by_element({el.symbol: 0 for el in supercell.composition.elements})
    ordered = OrderDisorderedStructureTransformation().apply_transformation(supercell)
    if not charged:
        ordered.remove_oxidation_states()
    return ordered
