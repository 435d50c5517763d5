"""A built-in set of real crystal structures (experimental room-temperature lattice constants).

Used by ``ssl-featurizer demo``, the docs and the tests, so that the package works with no data and
no network. Each crystal is a structure prototype (the fractional coordinates of its conventional cell,
written out below) with the crystal's species and lattice constants; building all 27 takes milliseconds.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure

_F = ((0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0))  # face-centring translations
_I = ((0, 0, 0), (0.5, 0.5, 0.5))  # body-centring translations
_P = ((0, 0, 0),)


def _prototype(kind: str, u: float = 0.0) -> tuple[str, tuple, list[list[tuple[float, float, float]]]]:
    """(space group, centring translations, per species: its positions in the cell before centring).

    ``u`` is the free coordinate of the prototypes that have one (rutile's O at (u, u, 0); wurtzite's anion
    at (1/3, 2/3, u)).
    """
    third = 1 / 3
    return {
        "diamond": ("Fd-3m", _F, [[(0, 0, 0), (0.25, 0.25, 0.25)]]),
        "zincblende": ("F-43m", _F, [[(0, 0, 0)], [(0.25, 0.25, 0.25)]]),
        "rock salt": ("Fm-3m", _F, [[(0, 0, 0)], [(0.5, 0.5, 0.5)]]),
        "fluorite": ("Fm-3m", _F, [[(0, 0, 0)], [(0.25, 0.25, 0.25), (0.75, 0.75, 0.75)]]),
        "B2": ("Pm-3m", _P, [[(0, 0, 0)], [(0.5, 0.5, 0.5)]]),
        "perovskite": ("Pm-3m", _P, [[(0, 0, 0)], [(0.5, 0.5, 0.5)], [(0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]]),
        "rutile": ("P4_2/mnm", _P, [[(0, 0, 0), (0.5, 0.5, 0.5)],
                                    [(u, u, 0), (1 - u, 1 - u, 0), (0.5 + u, 0.5 - u, 0.5), (0.5 - u, 0.5 + u, 0.5)]]),
        "wurtzite": ("P6_3mc", _P, [[(third, 2 * third, 0), (2 * third, third, 0.5)],
                                    [(third, 2 * third, u), (2 * third, third, 0.5 + u)]]),
        "bcc": ("Im-3m", _I, [[(0, 0, 0)]]),
        "fcc": ("Fm-3m", _F, [[(0, 0, 0)]]),
        "hcp": ("P6_3/mmc", _P, [[(third, 2 * third, 0.25), (2 * third, third, 0.75)]]),
    }[kind]


# name: (prototype, species (one per prototype species), a, c (non-cubic), free coordinate u)
_CRYSTALS: dict[str, tuple[str, tuple[str, ...], float, float | None, float]] = {
    "Si (diamond)": ("diamond", ("Si",), 5.431, None, 0),
    "Ge (diamond)": ("diamond", ("Ge",), 5.658, None, 0),
    "C (diamond)": ("diamond", ("C",), 3.567, None, 0),
    "GaAs (zincblende)": ("zincblende", ("Ga", "As"), 5.653, None, 0),
    "ZnS (zincblende)": ("zincblende", ("Zn", "S"), 5.41, None, 0),
    "CdTe (zincblende)": ("zincblende", ("Cd", "Te"), 6.48, None, 0),
    "NaCl (rock salt)": ("rock salt", ("Na", "Cl"), 5.64, None, 0),
    "KCl (rock salt)": ("rock salt", ("K", "Cl"), 6.29, None, 0),
    "LiF (rock salt)": ("rock salt", ("Li", "F"), 4.03, None, 0),
    "MgO (rock salt)": ("rock salt", ("Mg", "O"), 4.212, None, 0),
    "CsCl (B2)": ("B2", ("Cs", "Cl"), 4.123, None, 0),
    "CaF2 (fluorite)": ("fluorite", ("Ca", "F"), 5.463, None, 0),
    "SrTiO3 (perovskite)": ("perovskite", ("Sr", "Ti", "O"), 3.905, None, 0),
    "BaTiO3 (cubic perovskite)": ("perovskite", ("Ba", "Ti", "O"), 4.00, None, 0),
    "TiO2 (rutile)": ("rutile", ("Ti", "O"), 4.594, 2.959, 0.305),
    "ZnO (wurtzite)": ("wurtzite", ("Zn", "O"), 3.25, 5.207, 0.382),
    "GaN (wurtzite)": ("wurtzite", ("Ga", "N"), 3.189, 5.185, 0.377),
    "AlN (wurtzite)": ("wurtzite", ("Al", "N"), 3.112, 4.982, 0.382),
    "Fe (bcc)": ("bcc", ("Fe",), 2.866, None, 0),
    "Cr (bcc)": ("bcc", ("Cr",), 2.91, None, 0),
    "W (bcc)": ("bcc", ("W",), 3.165, None, 0),
    "Cu (fcc)": ("fcc", ("Cu",), 3.615, None, 0),
    "Al (fcc)": ("fcc", ("Al",), 4.05, None, 0),
    "Ni (fcc)": ("fcc", ("Ni",), 3.524, None, 0),
    "Au (fcc)": ("fcc", ("Au",), 4.078, None, 0),
    "Mg (hcp)": ("hcp", ("Mg",), 3.209, 5.211, 0),
    "Ti (hcp)": ("hcp", ("Ti",), 2.951, 4.686, 0),
}


def space_group(name: str) -> str:
    """International symbol of the space group of the built-in crystal ``name``."""
    kind, *_, u = _CRYSTALS[name]
    return _prototype(kind, u)[0]


def example_structures() -> dict[str, Structure]:
    """The built-in crystals, name → conventional-cell ``Structure``.

    Examples:
        >>> crystals = example_structures()
        >>> len(crystals["NaCl (rock salt)"]), crystals["Fe (bcc)"].composition.reduced_formula
        (8, 'Fe')
    """
    return {name: structure.copy() for name, structure in _built().items()}


@functools.cache
def _built() -> dict[str, Structure]:
    """Build the crystals once per process; callers get copies."""
    from pymatgen.core import Lattice, Structure

    out = {}
    for name, (kind, species, a, c, u) in _CRYSTALS.items():
        group, centring, positions = _prototype(kind, u)
        lattice = Lattice.cubic(a) if c is None else (
            Lattice.hexagonal(a, c) if group.startswith("P6") else Lattice.tetragonal(a, c))
        sites = [(sp, [(p + t) % 1.0 for p, t in zip(pos, shift)])
                 for sp, orbit in zip(species, positions) for pos in orbit for shift in centring]
        out[name] = Structure(lattice, [s for s, _ in sites], [x for _, x in sites])
    return out
