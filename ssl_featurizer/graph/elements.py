"""Element feature tables: one fixed-length vector per element, built from pymatgen's element data.

Each table is generated once (``python -m ssl_featurizer.graph.elements``) and shipped as JSON so that
features never change silently with the installed pymatgen version. Every model card names the table it
was trained with (``element_table``, ``"v1"`` when absent) and records its sha256.

Table ``v1`` (``element_table.json``, 79 columns, each block one-hot; a missing property leaves its block
all zero):

| block | width | meaning |
|---|---|---|
| ``group`` | 18 | IUPAC group 1..18 (pymatgen ``Element.group``; lanthanides and actinides count as group 3) |
| ``period`` | 7 | period 1..7 (``Element.row``) |
| ``block`` | 4 | s, p, d, f |
| ``electronegativity`` | 10 | Pauling electronegativity, 10 equal bins over its range |
| ``atomic_radius`` | 10 | empirical atomic radius (Å), 10 equal bins |
| ``ionization_energy`` | 10 | first ionisation energy (eV), 10 bins on a log scale |
| ``electron_affinity`` | 10 | electron affinity (eV), 10 equal bins |
| ``molar_volume`` | 10 | molar volume of the element (cm³/mol), 10 bins on a log scale |

Table ``v2`` (``element_table_v2.json``, 115 columns) is ``v1`` followed by the valence shell of the
ground-state configuration (pymatgen ``Element.electronic_structure``, the subshells outside the
noble-gas core), one-hot per subshell type:

| block | width | meaning |
|---|---|---|
| ``valence_s`` | 3 | electrons in valence s subshells, 0..2 |
| ``valence_p`` | 7 | electrons in valence p subshells, 0..6 |
| ``valence_d`` | 11 | electrons in valence d subshells, 0..10 |
| ``valence_f`` | 15 | electrons in valence f subshells, 0..14 |

In ``v1`` several rare earths share one row (Gd, Tb, Dy, Ho, Er and Sm; Nd and Pr; Eu and Yb): their
group, period, block and binned properties coincide. ``v2`` gives every element from H to Fm a distinct
row (tested).

Elements ``H`` (Z=1) to ``Fm`` (Z=100) are covered by both tables.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

MAX_Z = 100
DEFAULT_TABLE = "v1"
#: table name -> shipped file
TABLE_FILES = {"v1": "element_table.json", "v2": "element_table_v2.json"}

#: (name, width) of every block of table v1, in column order.
BLOCKS: tuple[tuple[str, int], ...] = (
    ("group", 18),
    ("period", 7),
    ("block", 4),
    ("electronegativity", 10),
    ("atomic_radius", 10),
    ("ionization_energy", 10),
    ("electron_affinity", 10),
    ("molar_volume", 10),
)
_VALENCE: tuple[tuple[str, int], ...] = (("valence_s", 3), ("valence_p", 7), ("valence_d", 11), ("valence_f", 15))
#: table name -> (name, width) of its blocks, in column order (every table starts with v1's blocks)
TABLE_BLOCKS: dict[str, tuple[tuple[str, int], ...]] = {"v1": BLOCKS, "v2": BLOCKS + _VALENCE}
_BINNED = {  # block -> log scale?
    "electronegativity": False,
    "atomic_radius": False,
    "ionization_energy": True,
    "electron_affinity": False,
    "molar_volume": True,
}


@dataclass(frozen=True)
class ElementTable:
    """The element feature matrix and its provenance.

    Attributes:
        features: ``(MAX_Z + 1, n_features)`` float32 matrix; row ``Z`` describes element ``Z``
            (row 0 is unused and all zero).
        columns: one label per column, e.g. ``"group_3"`` or ``"electronegativity_bin_7"``.
        supported: boolean mask of length ``MAX_Z + 1``; True where the element has a row.
        sha256: digest of the shipped JSON file.
    """

    features: np.ndarray
    columns: tuple[str, ...]
    supported: np.ndarray
    sha256: str

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return self.features.shape[1]

    def group(self, z: np.ndarray) -> np.ndarray:
        """0-based group index (0..17) of each atomic number."""
        return self.features[z, 0:18].argmax(axis=1)

    def period(self, z: np.ndarray) -> np.ndarray:
        """0-based period index (0..6) of each atomic number."""
        return self.features[z, 18:25].argmax(axis=1)


def _column_labels(blocks: tuple[tuple[str, int], ...] = BLOCKS) -> list[str]:
    labels: list[str] = []
    for name, width in blocks:
        if name == "block":
            labels += [f"block_{b}" for b in "spdf"]
        elif name in ("group", "period"):
            labels += [f"{name}_{i + 1}" for i in range(width)]
        elif name.startswith("valence_"):
            labels += [f"{name}_{i}" for i in range(width)]
        else:
            labels += [f"{name}_bin_{i}" for i in range(width)]
    return labels


def _raw_properties(z: int) -> dict[str, float | None]:
    import warnings

    from pymatgen.core.periodic_table import Element

    el = Element.from_Z(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def num(getter):
            try:
                value = getter()
            except (KeyError, ValueError, AttributeError, TypeError):
                return None
            if value is None:
                return None
            value = float(value)
            return value if math.isfinite(value) else None

        valence = {f"valence_{l}": 0 for l in "spdf"}
        for _n, l, count in re.findall(r"(\d)([spdf])(\d+)", el.electronic_structure.split("].")[-1]):
            valence[f"valence_{l}"] += int(count)
        return {
            **valence,
            "group": el.group,
            "period": el.row,
            "block": "spdf".index(el.block),
            "electronegativity": num(lambda: el.X),
            "atomic_radius": num(lambda: el.atomic_radius),
            "ionization_energy": num(lambda: el.ionization_energy),
            "electron_affinity": num(lambda: el.electron_affinity),
            "molar_volume": num(lambda: el.molar_volume),
        }


def build_table_from_pymatgen(name: str = DEFAULT_TABLE) -> dict:
    """Compute table ``name`` from the installed pymatgen (used to write the shipped JSON)."""
    blocks = _blocks(name)
    raw = {z: _raw_properties(z) for z in range(1, MAX_Z + 1)}
    edges = {}
    for prop, log in _BINNED.items():
        vals = np.array([raw[z][prop] for z in raw if raw[z][prop] is not None], dtype=float)
        if log:
            vals = np.log(vals[vals > 0])
        edges[prop] = np.linspace(vals.min(), vals.max(), 11).tolist()
    rows = {}
    for z, props in raw.items():
        row: list[int] = []
        for block, width in blocks:
            onehot = [0] * width
            value = props[block]
            if block in ("group", "period", "block"):
                onehot[int(value) - (0 if block == "block" else 1)] = 1
            elif block.startswith("valence_"):
                onehot[int(value)] = 1
            elif value is not None and not (_BINNED[block] and value <= 0):
                v = math.log(value) if _BINNED[block] else value
                idx = int(np.clip(np.searchsorted(edges[block], v, side="right") - 1, 0, width - 1))
                onehot[idx] = 1
            row += onehot
        rows[str(z)] = row
    return {"columns": _column_labels(blocks), "bin_edges": edges, "rows": rows}


def _blocks(name: str) -> tuple[tuple[str, int], ...]:
    if name not in TABLE_BLOCKS:
        raise ValueError(f"unknown element table {name!r}; known: {', '.join(TABLE_BLOCKS)}")
    return TABLE_BLOCKS[name]


@cache
def load_element_table(name: str = DEFAULT_TABLE) -> ElementTable:
    """Load the shipped element table ``name`` (``"v1"`` or ``"v2"``; cached)."""
    _blocks(name)
    blob = resources.files("ssl_featurizer.graph").joinpath(TABLE_FILES[name]).read_bytes()
    data = json.loads(blob)
    feats = np.zeros((MAX_Z + 1, len(data["columns"])), dtype=np.float32)
    supported = np.zeros(MAX_Z + 1, dtype=bool)
    for z, row in data["rows"].items():
        feats[int(z)] = row
        supported[int(z)] = True
    return ElementTable(feats, tuple(data["columns"]), supported, hashlib.sha256(blob).hexdigest())


def main() -> None:  # pragma: no cover - maintenance entry point
    """Regenerate every shipped table next to this module."""
    for name, file in TABLE_FILES.items():
        out = Path(__file__).with_name(file)
        out.write_text(json.dumps(build_table_from_pymatgen(name), indent=None, separators=(",", ":")))
        print(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
