"""Element feature table: one fixed-length vector per element, built from pymatgen's element data.

The table is generated once (``python -m ssl_featurizer.graph.elements``) and shipped as
``element_table.json`` so that features never change silently with the installed pymatgen version.
Every model card records the sha256 of the table it was trained with.

Columns (79 in all, each block one-hot; a missing property leaves its block all zero):

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

Elements ``H`` (Z=1) to ``Fm`` (Z=100) are covered.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

MAX_Z = 100
TABLE_FILE = "element_table.json"

#: (name, width) of every block, in column order.
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


def _column_labels() -> list[str]:
    labels: list[str] = []
    for name, width in BLOCKS:
        if name == "block":
            labels += [f"block_{b}" for b in "spdf"]
        elif name in ("group", "period"):
            labels += [f"{name}_{i + 1}" for i in range(width)]
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

        return {
            "group": el.group,
            "period": el.row,
            "block": "spdf".index(el.block),
            "electronegativity": num(lambda: el.X),
            "atomic_radius": num(lambda: el.atomic_radius),
            "ionization_energy": num(lambda: el.ionization_energy),
            "electron_affinity": num(lambda: el.electron_affinity),
            "molar_volume": num(lambda: el.molar_volume),
        }


def build_table_from_pymatgen() -> dict:
    """Compute the table from the installed pymatgen (used to write the shipped JSON)."""
    raw = {z: _raw_properties(z) for z in range(1, MAX_Z + 1)}
    edges = {}
    for name, log in _BINNED.items():
        vals = np.array([raw[z][name] for z in raw if raw[z][name] is not None], dtype=float)
        if log:
            vals = np.log(vals[vals > 0])
        edges[name] = np.linspace(vals.min(), vals.max(), 11).tolist()
    rows = {}
    for z, props in raw.items():
        row: list[int] = []
        for name, width in BLOCKS:
            onehot = [0] * width
            value = props[name]
            if name in ("group", "period", "block"):
                onehot[int(value) - (0 if name == "block" else 1)] = 1
            elif value is not None and not (_BINNED[name] and value <= 0):
                v = math.log(value) if _BINNED[name] else value
                idx = int(np.clip(np.searchsorted(edges[name], v, side="right") - 1, 0, width - 1))
                onehot[idx] = 1
            row += onehot
        rows[str(z)] = row
    return {"columns": _column_labels(), "bin_edges": edges, "rows": rows}


@lru_cache(maxsize=1)
def load_element_table() -> ElementTable:
    """Load the shipped element table (cached)."""
    blob = resources.files("ssl_featurizer.graph").joinpath(TABLE_FILE).read_bytes()
    data = json.loads(blob)
    feats = np.zeros((MAX_Z + 1, len(data["columns"])), dtype=np.float32)
    supported = np.zeros(MAX_Z + 1, dtype=bool)
    for z, row in data["rows"].items():
        feats[int(z)] = row
        supported[int(z)] = True
    return ElementTable(feats, tuple(data["columns"]), supported, hashlib.sha256(blob).hexdigest())


def main() -> None:  # pragma: no cover - maintenance entry point
    """Regenerate ``element_table.json`` next to this module."""
    out = Path(__file__).with_name(TABLE_FILE)
    out.write_text(json.dumps(build_table_from_pymatgen(), indent=None, separators=(",", ":")))
    print(f"wrote {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
