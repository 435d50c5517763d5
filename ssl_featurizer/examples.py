"""A built-in set of real crystal structures (experimental room-temperature lattice constants).

Used by ``ssl-featurizer demo``, the docs and the tests, so that the package works with no data and
no network. Structures are built from their space group, lattice constants and Wyckoff positions.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymatgen.core import Structure

# name: (space group, lattice kwargs, species, fractional coordinates of the asymmetric unit)
_CRYSTALS: dict[str, tuple[str, dict[str, float], list[str], list[list[float]]]] = {
    "Si (diamond)": ("Fd-3m", {"a": 5.431}, ["Si"], [[0, 0, 0]]),
    "Ge (diamond)": ("Fd-3m", {"a": 5.658}, ["Ge"], [[0, 0, 0]]),
    "C (diamond)": ("Fd-3m", {"a": 3.567}, ["C"], [[0, 0, 0]]),
    "GaAs (zincblende)": ("F-43m", {"a": 5.653}, ["Ga", "As"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "ZnS (zincblende)": ("F-43m", {"a": 5.41}, ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "CdTe (zincblende)": ("F-43m", {"a": 6.48}, ["Cd", "Te"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "NaCl (rock salt)": ("Fm-3m", {"a": 5.64}, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "KCl (rock salt)": ("Fm-3m", {"a": 6.29}, ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "LiF (rock salt)": ("Fm-3m", {"a": 4.03}, ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "MgO (rock salt)": ("Fm-3m", {"a": 4.212}, ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "CsCl (B2)": ("Pm-3m", {"a": 4.123}, ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    "CaF2 (fluorite)": ("Fm-3m", {"a": 5.463}, ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "SrTiO3 (perovskite)": ("Pm-3m", {"a": 3.905}, ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    "BaTiO3 (cubic perovskite)": ("Pm-3m", {"a": 4.00}, ["Ba", "Ti", "O"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    "TiO2 (rutile)": ("P4_2/mnm", {"a": 4.594, "c": 2.959}, ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]),
    "ZnO (wurtzite)": ("P6_3mc", {"a": 3.25, "c": 5.207}, ["Zn", "O"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
    "GaN (wurtzite)": ("P6_3mc", {"a": 3.189, "c": 5.185}, ["Ga", "N"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.377]]),
    "AlN (wurtzite)": ("P6_3mc", {"a": 3.112, "c": 4.982}, ["Al", "N"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]]),
    "Fe (bcc)": ("Im-3m", {"a": 2.866}, ["Fe"], [[0, 0, 0]]),
    "Cr (bcc)": ("Im-3m", {"a": 2.91}, ["Cr"], [[0, 0, 0]]),
    "W (bcc)": ("Im-3m", {"a": 3.165}, ["W"], [[0, 0, 0]]),
    "Cu (fcc)": ("Fm-3m", {"a": 3.615}, ["Cu"], [[0, 0, 0]]),
    "Al (fcc)": ("Fm-3m", {"a": 4.05}, ["Al"], [[0, 0, 0]]),
    "Ni (fcc)": ("Fm-3m", {"a": 3.524}, ["Ni"], [[0, 0, 0]]),
    "Au (fcc)": ("Fm-3m", {"a": 4.078}, ["Au"], [[0, 0, 0]]),
    "Mg (hcp)": ("P6_3/mmc", {"a": 3.209, "c": 5.211}, ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
    "Ti (hcp)": ("P6_3/mmc", {"a": 2.951, "c": 4.686}, ["Ti"], [[1 / 3, 2 / 3, 0.25]]),
}


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
    """Build the crystals once per process (space-group expansion costs ~0.5 s each); callers get copies."""
    from pymatgen.core import Lattice, Structure

    out = {}
    for name, (group, lat, species, coords) in _CRYSTALS.items():
        a = lat["a"]
        lattice = Lattice.hexagonal(a, lat["c"]) if group.startswith("P6") else (
            Lattice.tetragonal(a, lat["c"]) if "c" in lat else Lattice.cubic(a))
        out[name] = Structure.from_spacegroup(group, lattice, species, coords)
    return out
