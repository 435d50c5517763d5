"""Strict decoding of structures given as data: JSON text or the dicts of ``Structure.as_dict()``.

pymatgen's ``Structure.from_dict`` hands site properties to monty's generic decoder, which imports any module
named in an ``"@module"`` key (a file beside the data, or an installed module with import side effects, runs) and
rebuilds arrays of any announced size. Nothing here imports or calls anything a document names: a document is
read as the fields of a structure and nothing else, and its size bounds the work and memory it can cause.

Accepted (keys other than these are ignored; ``"@module"``/``"@class"`` are read as plain strings, never
imported):

* ``Structure.as_dict()`` / ``IStructure.as_dict()``: ``lattice`` (``{"matrix": 3×3, "pbc": [3 bools]}`` or a
  3×3 list), ``sites`` (each ``{"species": [{"element", "occu", "oxidation_state"?}], "abc"`` or ``"xyz",
  "label"?, "properties"?}``), ``charge``, ``properties``;
* the corpus format ``{"lattice": 3×3, "species": [symbols], "frac": [[x, y, z], ...]}``;
* either of these under a ``"structure"`` key of a record.

Properties (of the structure and of its sites) are kept as the plain JSON values they are (the descriptor
ignores them, as it ignores oxidation states). Every failure is a :class:`DecodeError` whose message says which
field is wrong and how.
"""

from __future__ import annotations

import json
import math
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: most sites a decoded structure may have (the graph builder's default ``max_atoms`` too)
MAX_SITES = 20_000
#: most species (with partial occupancies) on one site
MAX_SPECIES_PER_SITE = 16
#: longest JSON text decoded (characters); JSON-lines readers apply it per line
MAX_JSON_CHARS = 64 * 2**20


def text_hint(text: str) -> str:
    """What to tell a user who passed ``text`` instead of a structure (it is not the JSON of one)."""
    if "Full Formula" in text[:200]:
        return (" (it looks like str(Structure), which is not a storage format: a Dask DataFrame converts object "
                "columns to strings unless dask.config.set({'dataframe.convert-string': False}); or store "
                "s.to_json() or s.as_dict())")
    return " that is not the JSON of a structure"


class DecodeError(ValueError):
    """A structure document that cannot be decoded; the message says which field and why."""


class NotAStructureError(DecodeError):
    """A document (or object) of another kind than a structure: a Molecule's dict, a record, a list, ..."""

    def __init__(self, got: str):
        super().__init__("expected a pymatgen Structure or the dict of Structure.as_dict() (with 'lattice' and "
                         f"'sites'), got {got}")


def loads_structure(text: str | bytes) -> Structure:
    """A Structure from JSON text (see the module docstring for what is accepted).

    Raises:
        DecodeError: invalid JSON, text longer than :data:`MAX_JSON_CHARS`, or not a structure.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8 text (byte at offset {exc.start})") from None
    if len(text) > MAX_JSON_CHARS:
        raise DecodeError(f"JSON text of {len(text):,} characters is longer than the limit of {MAX_JSON_CHARS:,}")
    if not text.lstrip().startswith("{"):
        raise NotAStructureError(f"a string{text_hint(text)}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    except (RecursionError, ValueError) as exc:  # nesting too deep, integers too long
        raise DecodeError(f"invalid JSON: {type(exc).__name__}: {exc}") from None
    return structure_from_dict(obj)


def is_structure_dict(obj: Any) -> bool:
    """Whether ``obj`` looks like one of the accepted dicts (it may still fail to decode)."""
    return isinstance(obj, dict) and (("lattice" in obj and ("sites" in obj or "species" in obj))
                                      or isinstance(obj.get("structure"), dict))


def structure_from_dict(obj: Any) -> Structure:
    """A Structure from one of the accepted dicts (module docstring), decoded strictly.

    Raises:
        DecodeError: with the field and the reason.
    """
    if not isinstance(obj, dict):
        raise NotAStructureError(_kind(obj))
    kind = obj.get("@class")
    if kind is not None and kind not in ("Structure", "IStructure"):
        hint = " (a Molecule has no lattice; put it in a box first)" if kind == "Molecule" else ""
        raise NotAStructureError(f"a {str(kind)[:40]} dict{hint}")
    if "lattice" not in obj:
        if isinstance(obj.get("structure"), dict):
            return structure_from_dict(obj["structure"])
        raise NotAStructureError(f"a dict with keys {sorted(map(str, obj))[:6]}")
    if "sites" in obj:
        return _from_pymatgen_dict(obj)
    if "species" in obj and "frac" in obj:
        return _from_corpus_dict(obj)
    raise DecodeError("a structure needs 'sites' (Structure.as_dict()) or 'species' and 'frac' (corpus format)")


def _kind(obj: Any) -> str:
    return "null" if obj is None else type(obj).__name__


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(f"{field} must be a number, got {_kind(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise DecodeError(f"{field} is {value} (not finite)")
    return value


def _vector(value: Any, field: str) -> list[float]:
    if not isinstance(value, list) or len(value) != 3:
        raise DecodeError(f"{field} must be a list of 3 numbers")
    return [_number(v, f"{field}[{i}]") for i, v in enumerate(value)]


def _lattice(value: Any) -> tuple[list[list[float]], tuple[bool, bool, bool]]:
    pbc: Any = (True, True, True)
    if isinstance(value, dict):
        if "matrix" not in value:
            raise DecodeError("lattice must have a 'matrix' (3 vectors of 3 numbers)")
        pbc = value.get("pbc", pbc)
        value = value["matrix"]
    if not isinstance(value, list) or len(value) != 3:
        raise DecodeError("lattice matrix must be 3 vectors of 3 numbers")
    matrix = [_vector(row, f"lattice vector {i}") for i, row in enumerate(value)]
    if not (isinstance(pbc, (list, tuple)) and len(pbc) == 3 and all(isinstance(p, bool) for p in pbc)):
        raise DecodeError("lattice pbc must be 3 booleans")
    return matrix, tuple(pbc)


@cache
def _pymatgen() -> Any:
    """pymatgen's core module, imported once on first use (heavy; not needed to import this module)."""
    import pymatgen.core

    return pymatgen.core


@cache
def _element_of(symbol: str) -> Any:
    try:
        return _pymatgen().Element(symbol)
    except ValueError:
        return None


def _element(symbol: Any, field: str) -> Any:
    if not isinstance(symbol, str) or not symbol.isalpha() or len(symbol) > 3:
        raise DecodeError(f"{field} must be an element symbol, got {str(symbol)[:20]!r}")
    element = _element_of(symbol)
    if element is None:
        raise DecodeError(f"{field} {symbol!r} is not a chemical element")
    return element


def _species(entries: Any, field: str) -> dict[Any, float]:
    if isinstance(entries, str):  # a bare symbol
        return {_element(entries, field): 1.0}
    if not isinstance(entries, list) or not entries:
        raise DecodeError(f"{field} must be a non-empty list of {{'element', 'occu'}} entries")
    if len(entries) > MAX_SPECIES_PER_SITE:
        raise DecodeError(f"{field} lists {len(entries)} species, more than {MAX_SPECIES_PER_SITE}")
    out: dict[Any, float] = {}
    for k, entry in enumerate(entries):
        where = f"{field}[{k}]"
        if not isinstance(entry, dict):
            raise DecodeError(f"{where} must be an object with 'element' and 'occu'")
        element = _element(entry.get("element"), f"{where}.element")
        occu = _number(entry.get("occu", 1.0), f"{where}.occu")
        if not 0 < occu <= 1 + 1e-6:
            raise DecodeError(f"{where}.occu is {occu}: an occupancy must be in (0, 1]")
        oxi = entry.get("oxidation_state")
        specie = element if oxi is None else _pymatgen().Species(element.symbol, _number(oxi, f"{where}.oxidation_state"))
        out[specie] = out.get(specie, 0.0) + occu
    if sum(out.values()) > 1 + 1e-6:
        raise DecodeError(f"{field}: occupancies sum to {sum(out.values()):.4g}, more than 1")
    return out


def _sites_count(values: Any, field: str) -> int:
    if not isinstance(values, list):
        raise DecodeError(f"{field} must be a list")
    if not values:
        raise DecodeError("structure has no sites")
    if len(values) > MAX_SITES:
        raise DecodeError(f"structure has {len(values)} sites, more than the limit of {MAX_SITES}")
    return len(values)


def _from_pymatgen_dict(obj: dict[str, Any]) -> Structure:
    from pymatgen.core import Lattice, Structure

    matrix, pbc = _lattice(obj["lattice"])
    sites = obj["sites"]
    _sites_count(sites, "sites")
    species, coords, labels, props = [], [], [], []
    cartesian = None
    for i, site in enumerate(sites):
        where = f"site {i}"
        if not isinstance(site, dict):
            raise DecodeError(f"{where} must be an object")
        species.append(_species(site.get("species"), f"{where} species"))
        key = "abc" if "abc" in site else "xyz" if "xyz" in site else None
        if key is None:
            raise DecodeError(f"{where} has no coordinates ('abc' or 'xyz')")
        if cartesian is None:
            cartesian = key == "xyz"
        elif cartesian != (key == "xyz"):
            key = "xyz" if cartesian else "abc"
            if key not in site:
                raise DecodeError(f"{where} lacks '{key}' given for the sites before it")
        coords.append(_vector(site[key], f"{where} {key}"))
        label = site.get("label")
        labels.append(label if isinstance(label, str) else None)
        properties = site.get("properties") or {}
        if not isinstance(properties, dict):
            raise DecodeError(f"{where} properties must be an object")
        props.append(properties)
    charge = obj.get("charge") or 0.0
    site_properties = {key: [p.get(key) for p in props] for key in dict.fromkeys(k for p in props for k in p)}
    structure_properties = obj.get("properties") if isinstance(obj.get("properties"), dict) else None
    try:
        return Structure(Lattice(matrix, pbc=pbc), species, coords, charge=_number(charge, "charge"),
                         coords_are_cartesian=bool(cartesian), site_properties=site_properties or None,
                         labels=labels if any(label is not None for label in labels) else None,
                         properties=structure_properties)
    except DecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymatgen's own checks of an otherwise well-formed document
        raise DecodeError(f"not a valid structure: {type(exc).__name__}: {exc}") from None


def _from_corpus_dict(obj: dict[str, Any]) -> Structure:
    from pymatgen.core import Lattice, Structure

    matrix, pbc = _lattice(obj["lattice"])
    n = _sites_count(obj["species"], "species")
    frac = obj["frac"]
    if not isinstance(frac, list) or len(frac) != n:
        raise DecodeError(f"frac must list one coordinate triple per species ({n})")
    species = [_species(s, f"site {i} species") for i, s in enumerate(obj["species"])]
    coords = [_vector(c, f"site {i} frac") for i, c in enumerate(frac)]
    return Structure(Lattice(matrix, pbc=pbc), species, coords)
