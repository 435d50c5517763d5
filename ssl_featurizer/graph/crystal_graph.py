"""Crystal graphs: a pymatgen ``Structure`` becomes atoms (nodes) and directed neighbour edges.

Neighbour selection is designed so that *equivalent inputs give the same graph*:

* all periodic neighbours within ``cutoff`` are found with pymatgen's vectorised
  ``Structure.get_neighbor_list`` (periodic images count as separate neighbours);
* for each centre atom, the ``max_neighbors`` nearest are kept **plus every neighbour tied with the
  k-th one** (distance within ``tie_tolerance`` of it). A plain top-k would cut a symmetric shell at
  an arbitrary, float-noise-dependent place, so the graph would change with site order, orientation
  or supercell;
* there are no padding edges: an atom with fewer neighbours inside the cutoff simply has fewer edges;
  an atom with none at all is an error (its descriptor would hold no environment information).

Speed: the search first uses a smaller radius estimated from the density (about 5 Å for typical
inorganic crystals instead of 8 Å, i.e. ~4× fewer candidate pairs) and falls back to the full cutoff
only for the structures where some atom's kept shell is not provably complete inside it, so the
graph is exactly the one of the full-cutoff search (the same edges and distances; edges of equal
length may come in another order, which changes descriptors by ~1e-15 at most).

Edges point from neighbour (source, ``edge_index[0]``) to centre (target, ``edge_index[1]``), so
messages flow neighbour → centre.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ssl_featurizer.graph.elements import MAX_Z, load_element_table

if TYPE_CHECKING:
    from pymatgen.core import Structure


class StructureError(ValueError):
    """Raised when an input cannot be turned into a crystal graph; the message says why."""


@dataclass(frozen=True)
class GraphConfig:
    """How structures become graphs. Stored in every model card.

    Attributes:
        cutoff: neighbour search radius in Å.
        max_neighbors: number of nearest neighbours kept per atom (ties at the last one are all kept).
        tie_tolerance: distances within this many Å of the k-th neighbour's count as tied.
        min_distance: two atoms closer than this (Å) are reported as overlapping.
        max_atoms: structures with more sites are refused (memory bound: ~80 MB per 1,000 atoms in one cell).
        neighbor_mode: ``"shell"`` (ours: k nearest plus the tied shell, no padding) or ``"kong2023"``
            (Kong et al.'s convention, only for their released weights: exactly k nearest, atoms with
            fewer neighbours padded with edges from node 0 at ``pad_distance``).
        pad_distance: distance of the padding edges in ``"kong2023"`` mode (Å).
    """

    cutoff: float = 8.0
    max_neighbors: int = 12
    tie_tolerance: float = 1e-3
    min_distance: float = 0.1
    max_atoms: int = 20000
    neighbor_mode: str = "shell"
    pad_distance: float = 9.0

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form for JSON model cards."""
        return asdict(self)


@dataclass(frozen=True)
class CrystalGraph:
    """A directed crystal graph.

    Attributes:
        atomic_numbers: ``(n_atoms,)`` int64.
        edge_index: ``(2, n_edges)`` int64; row 0 the neighbour (message source), row 1 the centre.
        distances: ``(n_edges,)`` float32 interatomic distances in Å.
        vectors: ``(n_edges, 3)`` float32 Cartesian vectors from the centre to the neighbour's periodic image
            (Å), only when asked for (``build_graph(..., vectors=True)``; pretraining objectives that perturb
            positions need them); ``None`` otherwise.
    """

    atomic_numbers: np.ndarray
    edge_index: np.ndarray
    distances: np.ndarray
    vectors: np.ndarray | None = None

    @property
    def n_atoms(self) -> int:
        """Number of nodes."""
        return int(self.atomic_numbers.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.distances.shape[0])


def as_structure(obj: Any) -> Structure:
    """``obj`` as a pymatgen ``Structure`` (or ``IStructure``): itself, or decoded from data.

    Data are the dict of ``Structure.as_dict()`` (DataFrames read from JSON, e.g. matminer's datasets, hold
    structures so), the corpus format, or either as JSON text; they are decoded strictly
    (:mod:`ssl_featurizer.graph.decode`: nothing a document names is imported or run).

    Raises:
        StructureError: for anything else (a Molecule, a Composition, another dict, ...), saying what it is.
    """
    from pymatgen.core import IStructure

    if isinstance(obj, IStructure):
        return obj
    from ssl_featurizer.graph.decode import (
        DecodeError,
        NotAStructureError,
        loads_structure,
        structure_from_dict,
        text_hint,
    )

    text = obj.decode("utf-8", "replace") if isinstance(obj, bytes) else obj
    if isinstance(text, str) and not text.lstrip().startswith("{"):
        raise StructureError(f"expected a pymatgen Structure, got {type(obj).__name__}{text_hint(text)}")
    if isinstance(obj, (dict, str, bytes)):

        try:
            return structure_from_dict(obj) if isinstance(obj, dict) else loads_structure(obj)
        except NotAStructureError as exc:
            raise StructureError(str(exc)) from None
        except DecodeError as exc:
            raise StructureError(f"could not read the Structure {'dict' if isinstance(obj, dict) else 'JSON'}: "
                                 f"{exc}") from None
    kind = type(obj).__name__
    hint = " (a Molecule has no lattice; put it in a box first)" if kind == "Molecule" else ""
    raise StructureError(f"expected a pymatgen Structure, got {kind}{hint}")


def validate_structure(structure: Any, config: GraphConfig) -> np.ndarray:
    """Check that ``structure`` can be featurized and return its atomic numbers.

    Raises:
        StructureError: with the reason, for anything that is not an ordered, finite, periodic
            structure made of elements in the element table.
    """
    return _validated(structure, config)[0]


def _validated(structure: Any, config: GraphConfig) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Atomic numbers, Cartesian coordinates, cell volume and fractional coordinates of a valid structure.

    See :func:`validate_structure`.
    """
    structure = as_structure(structure)
    n = len(structure)
    pbc = tuple(bool(p) for p in structure.lattice.pbc)
    if not all(pbc):
        raise StructureError(f"structure is not periodic in 3 dimensions (pbc={pbc}): the descriptor describes "
                             "3-D periodic crystals; for a slab or a molecule, give it a cell with vacuum and "
                             "pbc=(True, True, True)")
    if n == 0:
        raise StructureError("structure has no sites")
    if n > config.max_atoms:
        raise StructureError(f"structure has {n} sites, more than max_atoms={config.max_atoms}")
    numbers = _atomic_numbers(structure)
    matrix = structure.lattice.matrix
    with np.errstate(invalid="ignore", over="ignore"):
        frac = structure.frac_coords
        coords = frac @ matrix  # one product instead of pymatgen's per-site cart_coords
        finite = math.isfinite(float(matrix.sum()) + float(coords.sum()))  # NaN/inf anywhere reach the sum
    if not finite:
        raise StructureError("lattice or coordinates contain NaN or inf")
    far = float(np.abs(frac).max())
    if far > _MAX_FRACTIONAL:
        # the neighbour search grids the box around all coordinates: a site 1e15 cells away takes ~15 GB
        raise StructureError(f"a fractional coordinate is {far:.3g}: a site lies more than {_MAX_FRACTIONAL:g} cells "
                             "away from the cell; wrap the sites into it first (Structure.from_sites(s, to_unit_cell=True))")
    (a1, a2, a3), (b1, b2, b3), (c1, c2, c3) = matrix.tolist()
    volume = abs(a1 * (b2 * c3 - b3 * c2) - a2 * (b1 * c3 - b3 * c1) + a3 * (b1 * c2 - b2 * c1))
    if not volume > 1e-6:
        raise StructureError("lattice is degenerate (zero volume)")
    return numbers, coords, volume, frac


# largest |fractional coordinate| accepted (real structures stay within a cell or two of the origin)
_MAX_FRACTIONAL = 10.0

# species object -> atomic number, or the reason it cannot be featurized (pymatgen's ``Element.Z`` is
# slow enough to dominate validation of a 30-atom cell; species objects are few and hashable)
_SPECIES_Z: dict[Any, int | str] = {}


def _species_number(specie: Any) -> int | str:
    found = _SPECIES_Z.get(specie)
    if found is None:
        table = load_element_table()
        z = getattr(specie, "Z", None)
        if z is None or not getattr(specie, "symbol", None) or type(specie).__name__ == "DummySpecies":
            found = f"site species {specie!s} is not a chemical element"
        elif z > table.features.shape[0] - 1 or not table.supported[z]:
            found = f"element {specie.symbol} (Z={z}) is beyond the element table"
        else:
            found = int(z)
        if len(_SPECIES_Z) < 10_000:
            _SPECIES_Z[specie] = found
    return found


def _atomic_numbers(structure: Structure) -> np.ndarray:
    """Atomic numbers of an ordered structure, in one pass over the sites (raises StructureError)."""
    numbers = np.empty(len(structure), dtype=np.int64)
    for i, site in enumerate(structure):  # disorder is reported before any species problem
        species = site.species
        if len(species) != 1:
            raise StructureError(_DISORDERED)
        ((specie, occupancy),) = species.items()
        if occupancy != 1:
            raise StructureError(_DISORDERED)
        z = _species_number(specie)
        if isinstance(z, str):
            raise StructureError(z)
        numbers[i] = z
    return numbers


_DISORDERED = ("structure is disordered (partial occupancies); order it first, e.g. with "
               "ssl_featurizer.ordered_approximant(structure) (one ordered supercell)")


def build_graph(structure: Structure, config: GraphConfig | None = None, vectors: bool = False) -> CrystalGraph:
    """Build the crystal graph of one structure.

    Args:
        structure: an ordered pymatgen ``Structure`` (or its ``as_dict()``, see :func:`as_structure`).
        config: graph settings; defaults to ``GraphConfig()``.
        vectors: also return each edge's Cartesian centre → neighbour vector (``"shell"`` mode only).

    Returns:
        The graph, with edges sorted by (centre, distance).

    Raises:
        StructureError: if the structure is invalid (see :func:`validate_structure`) or two atoms overlap.
    """
    config = config or GraphConfig()
    structure = as_structure(structure)
    numbers, coords, volume, frac = _validated(structure, config)
    n, k = len(numbers), config.max_neighbors
    if config.neighbor_mode == "kong2023":
        if vectors:
            raise ValueError("edge vectors are available in the 'shell' neighbour mode only")
        _check_pair_budget(frac, structure.lattice.matrix, volume, config.cutoff)
        centers, neighbors, _images, dists = structure.get_neighbor_list(config.cutoff)
        centers, neighbors, dists = _checked_pairs(centers, neighbors, dists, config)
        return _kong2023_graph(numbers, centers, neighbors, dists, np.bincount(centers, minlength=n), config)
    matrix, coords, frac = reduced_basis(structure.lattice.matrix, coords, frac, volume)
    radius = _search_radius(volume / n, config)
    while True:
        _check_pair_budget(frac, matrix, volume, radius)
        centers, neighbors, dists, images = _pairs(matrix, coords, radius, config)
        order = np.lexsort((dists, centers))
        centers, neighbors, dists, images = centers[order], neighbors[order], dists[order], images[order]
        counts = np.bincount(centers, minlength=n)
        if radius >= config.cutoff:
            break
        # Every neighbour at most tie_tolerance beyond the k-th lies inside the radius: the kept shells
        # are the ones the full-cutoff search gives. Otherwise search again with the full cutoff.
        if counts.min() >= k and dists[np.cumsum(counts) - counts + (k - 1)].max() + config.tie_tolerance < \
                radius - _RADIUS_MARGIN:
            break
        radius = config.cutoff
    if counts.min() == 0:
        i = int(np.flatnonzero(counts == 0)[0])
        raise StructureError(
            f"site {i} ({structure[i].specie}) has no neighbour within the {config.cutoff} Å cutoff: its "
            "descriptor would carry no environment information (is the lattice in Å?)")
    kth = dists[np.cumsum(counts) - counts + np.minimum(counts, k) - 1]
    keep = dists <= kth[centers] + config.tie_tolerance
    edge_vectors = None
    if vectors:
        shift = images[keep].astype(np.float64) @ matrix
        edge_vectors = (coords[neighbors[keep]] + shift - coords[centers[keep]]).astype(np.float32)
    return CrystalGraph(numbers, np.stack([neighbors[keep], centers[keep]]), dists[keep].astype(np.float32),
                        edge_vectors)


#: Most (centre, neighbour) pairs one neighbour search may hold (an upper bound is checked first):
#: ~2^24 pairs are ~1.5 GB at the search's peak (docs/reliability.md); typical crystals need ~30-200 per atom.
MAX_PAIRS = 2**24


def pair_upper_bound(frac: np.ndarray, matrix: np.ndarray, volume: float, radius: float) -> int:
    """An upper bound on the periodic (centre, neighbour) pairs within ``radius``, in O(n_atoms) memory.

    Atoms are binned on a grid of the fractional cell whose bins are at least ``radius / 4`` wide
    (perpendicular width); every neighbour of an atom within ``radius`` lies in the window of bins
    around the atom's bin that spans ``radius`` on each side (periodic images counted once per
    wrap), so the sum over atoms of their window's atom count bounds the pairs (about 3x above the
    true count for homogeneous crystals, exact in the worst, clustered, case).
    """
    a, b, c = matrix
    widths = volume / np.array([np.linalg.norm(np.cross(b, c)), np.linalg.norm(np.cross(c, a)),
                                np.linalg.norm(np.cross(a, b))])  # distance between opposite faces
    bins = np.clip(np.floor(4 * widths / radius), 1, 128).astype(int)
    index = np.floor((frac % 1.0) * bins).astype(int) % bins
    counts = np.zeros(bins, dtype=np.float64)
    np.add.at(counts, tuple(index.T), 1.0)
    window = counts
    for axis in range(3):
        half = math.ceil(radius / (widths[axis] / bins[axis]))
        full, rest = divmod(2 * half + 1, bins[axis])  # whole wraps of the axis, then a partial window
        total = window.sum(axis=axis, keepdims=True)
        partial = sum(np.roll(window, shift, axis=axis) for shift in range(-half, -half + rest)) if rest else 0
        window = full * total + partial
    return int(counts.ravel() @ np.broadcast_to(window, counts.shape).ravel())


def _check_pair_budget(frac: np.ndarray, matrix: np.ndarray, volume: float, radius: float) -> None:
    """Refuse a neighbour search that could hold more than :data:`MAX_PAIRS` pairs (StructureError)."""
    bound = pair_upper_bound(frac, matrix, volume, radius)
    if bound > MAX_PAIRS:
        raise StructureError(
            f"the neighbour search within {radius:.3g} Å could hold up to {bound:.3g} atom pairs, more than the "
            f"limit of {MAX_PAIRS:.3g} (atoms packed far more densely than in any crystal, or a huge cell): "
            "refused to bound memory")


# the shell must end this far (Å) inside the search radius to count as complete (guards the boundary)
_RADIUS_MARGIN = 0.01
# search radius / radius of the sphere that holds max_neighbors atoms at the mean density; on 15,000
# MP structures the k-th neighbour lies at most ~1.3× that far: <0.1 % of structures need the fallback
_RADIUS_FACTOR = 1.3


def _search_radius(volume_per_atom: float, config: GraphConfig) -> float:
    """Radius expected to hold every atom's shell; the full cutoff for sparse structures."""
    sphere = (3.0 * config.max_neighbors * volume_per_atom / (4.0 * math.pi)) ** (1.0 / 3.0)
    radius = _RADIUS_FACTOR * sphere + config.tie_tolerance + 2 * _RADIUS_MARGIN
    return float(min(config.cutoff, max(radius, config.min_distance)))


#: a basis whose orthogonality defect (product of the vector lengths / volume) exceeds this is reduced before the
#: neighbour search: hexagonal cells have 1.15, the primitive fcc cell 1.41; LLL-reduced bases stay below ~2
SKEW_DEFECT = 2.0


def reduced_basis(matrix: np.ndarray, coords: np.ndarray, frac: np.ndarray,
                  volume: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same periodic crystal in an LLL-reduced basis when the given basis is very oblique.

    A skewed basis (e.g. ``a' = a + 7b + 5c``) describes the same crystal, but the neighbour search grids the
    cell along its vectors and would need enormous windows. The graph is a property of the crystal, not of its
    basis: the neighbours and their distances are the same in any basis (to rounding), so the descriptor is too.
    Bases with an orthogonality defect up to :data:`SKEW_DEFECT` are returned unchanged.

    Returns:
        ``(matrix, coords, frac)``: lattice vectors (rows), Cartesian and fractional coordinates (wrapped into
        the reduced cell when the basis changed).
    """
    defect = float(np.prod(np.linalg.norm(matrix, axis=1))) / volume
    if defect <= SKEW_DEFECT:
        return matrix, coords, frac
    from pymatgen.core import Lattice

    reduced = np.asarray(Lattice(matrix).lll_matrix, dtype=float)
    if float(np.prod(np.linalg.norm(reduced, axis=1))) / volume >= defect:
        return matrix, coords, frac
    new_frac = np.linalg.solve(reduced.T, coords.T).T % 1.0
    return reduced, new_frac @ reduced, new_frac


def _pairs(matrix: np.ndarray, coords: np.ndarray, radius: float,
           config: GraphConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (centre, neighbour, distance, image) pairs within ``radius``, periodic images included, self excluded.

    Raises:
        StructureError: if two atoms are closer than ``config.min_distance``.
    """
    from pymatgen.optimization.neighbors import find_points_in_spheres

    coords = np.ascontiguousarray(coords, dtype=float)
    centers, neighbors, images, dists = find_points_in_spheres(
        coords, coords, r=radius, pbc=np.ones(3, dtype=np.int64),
        lattice=np.ascontiguousarray(matrix, dtype=float), tol=_SELF_TOLERANCE)
    other = (centers != neighbors) | (dists > _SELF_TOLERANCE)  # as Structure.get_neighbor_list
    centers, neighbors, images, dists = centers[other], neighbors[other], images[other], dists[other]
    return (*_checked_pairs(centers, neighbors, dists, config), np.asarray(images).reshape(-1, 3))


def _checked_pairs(centers: Any, neighbors: Any, dists: Any,
                   config: GraphConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pair arrays as int64/float64, after checking that no two atoms overlap."""
    centers = np.asarray(centers, dtype=np.int64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    dists = np.asarray(dists, dtype=np.float64)
    if dists.size and dists.min() < config.min_distance:
        i = int(np.argmin(dists))
        raise StructureError(
            f"sites {centers[i]} and {neighbors[i]} overlap (distance {dists[i]:.3g} Å < "
            f"min_distance={config.min_distance} Å)")
    return centers, neighbors, dists


_SELF_TOLERANCE = 1e-8  # Structure.get_neighbor_list's numerical_tol


def _kong2023_graph(numbers: np.ndarray, centers: np.ndarray, neighbors: np.ndarray, dists: np.ndarray,
                    counts: np.ndarray, config: GraphConfig) -> CrystalGraph:
    """Kong et al.'s convention: k nearest by distance (ties cut arbitrarily), padding to node 0."""
    n, k = len(numbers), config.max_neighbors
    order = np.lexsort((dists, centers))
    centers, neighbors, dists = centers[order], neighbors[order], dists[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(centers)) - np.repeat(starts, counts)
    keep = rank < k
    n_pad = np.maximum(0, k - counts)
    pad_centers = np.repeat(np.arange(n), n_pad)
    src = np.concatenate([neighbors[keep], np.zeros(len(pad_centers), dtype=np.int64)])
    dst = np.concatenate([centers[keep], pad_centers])
    dist = np.concatenate([dists[keep], np.full(len(pad_centers), config.pad_distance)])
    order = np.argsort(dst, kind="stable")
    return CrystalGraph(numbers, np.stack([src[order], dst[order]]), dist[order].astype(np.float32))


#: below this, the shortest distance between two atoms relative to the sum of their atomic radii (pymatgen's
#: empirical ``Element.atomic_radius``) is implausible for a crystal; on 22,117 Materials Project structures
#: (every 7th of the corpus; ``studies/plausibility.py``) the smallest value is 0.48
MIN_NEIGHBOR_RATIO = 0.45
#: above this, the median over atoms of that ratio for each atom's nearest neighbour is implausible; 99.9 % of
#: the same structures lie below 1.72 (molecular crystals of H2 and noble gases above)
MAX_MEDIAN_NEIGHBOR_RATIO = 1.75


@cache
def _radii() -> np.ndarray:
    from pymatgen.core import Element

    radii = np.full(MAX_Z + 1, np.nan)
    for z in range(1, MAX_Z + 1):
        radius = Element.from_Z(z).atomic_radius
        radii[z] = float(radius) if radius is not None else np.nan
    return radii


def neighbor_ratios(graph: CrystalGraph) -> np.ndarray:
    """Each atom's nearest-neighbour distance over the sum of the two atoms' atomic radii, ``(n_atoms,)``
    (NaN where an element has no tabulated radius). Edges of a graph are sorted by (centre, distance)."""
    centers = graph.edge_index[1]
    first = np.flatnonzero(np.r_[True, centers[1:] != centers[:-1]])
    z = graph.atomic_numbers
    radii = _radii()
    ratios = np.full(graph.n_atoms, np.nan)
    ratios[centers[first]] = graph.distances[first] / (radii[z[centers[first]]] + radii[z[graph.edge_index[0][first]]])
    return ratios


def implausibility(graph: CrystalGraph) -> str | None:
    """Why a valid structure's distances are implausible for a crystal (a unit mistake), or None.

    The descriptor of such a structure is computed, but it describes a crystal nobody has: a lattice given in nm
    makes every distance 10× too short, one in bohr 1.9× too long.
    """
    ratios = neighbor_ratios(graph)
    ratios = ratios[~np.isnan(ratios)]  # elements without a tabulated radius are left out
    if not ratios.size:
        return None
    low, median = float(ratios.min()), float(np.median(ratios))
    if low < MIN_NEIGHBOR_RATIO:
        return (f"two atoms are {low:.2f}× the sum of their atomic radii apart, closer than in any known crystal "
                f"(< {MIN_NEIGHBOR_RATIO}): is the lattice in nm or another unit instead of Å?")
    if median > MAX_MEDIAN_NEIGHBOR_RATIO:
        return (f"atoms are typically {median:.2f}× the sum of their atomic radii from their nearest neighbour "
                f"(> {MAX_MEDIAN_NEIGHBOR_RATIO}, sparser than 99.9 % of Materials Project crystals): is the lattice "
                "in bohr (0.529 Å) or another unit instead of Å?")
    return None
