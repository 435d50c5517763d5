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

Edges point from neighbour (source, ``edge_index[0]``) to centre (target, ``edge_index[1]``), so
messages flow neighbour → centre.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ssl_featurizer.graph.elements import load_element_table

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
    """

    atomic_numbers: np.ndarray
    edge_index: np.ndarray
    distances: np.ndarray

    @property
    def n_atoms(self) -> int:
        """Number of nodes."""
        return int(self.atomic_numbers.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.distances.shape[0])


def validate_structure(structure: Any, config: GraphConfig) -> np.ndarray:
    """Check that ``structure`` can be featurized and return its atomic numbers.

    Raises:
        StructureError: with the reason, for anything that is not an ordered, finite, periodic
            structure made of elements in the element table.
    """
    from pymatgen.core import Structure

    if not isinstance(structure, Structure):
        kind = type(structure).__name__
        hint = " (a Molecule has no lattice; put it in a box first)" if kind == "Molecule" else ""
        raise StructureError(f"expected a pymatgen Structure, got {kind}{hint}")
    n = len(structure)
    if n == 0:
        raise StructureError("structure has no sites")
    if n > config.max_atoms:
        raise StructureError(f"structure has {n} sites, more than max_atoms={config.max_atoms}")
    if not structure.is_ordered:
        raise StructureError("structure is disordered (partial occupancies); order it first, e.g. with "
                             "OrderDisorderedStructureTransformation")
    matrix = structure.lattice.matrix
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(structure.frac_coords)):
        raise StructureError("lattice or coordinates contain NaN or inf")
    if not abs(structure.lattice.volume) > 1e-6:
        raise StructureError("lattice is degenerate (zero volume)")
    table = load_element_table()
    numbers = []
    for site in structure:
        specie = site.specie
        z = getattr(specie, "Z", None)
        if z is None or not getattr(specie, "symbol", None) or type(specie).__name__ == "DummySpecies":
            raise StructureError(f"site species {specie!s} is not a chemical element")
        if z > table.features.shape[0] - 1 or not table.supported[z]:
            raise StructureError(f"element {specie.symbol} (Z={z}) is beyond the element table")
        numbers.append(z)
    return np.asarray(numbers, dtype=np.int64)


def build_graph(structure: Structure, config: GraphConfig | None = None) -> CrystalGraph:
    """Build the crystal graph of one structure.

    Args:
        structure: an ordered pymatgen ``Structure``.
        config: graph settings; defaults to ``GraphConfig()``.

    Returns:
        The graph, with edges sorted by (centre, distance).

    Raises:
        StructureError: if the structure is invalid (see :func:`validate_structure`) or two atoms overlap.
    """
    config = config or GraphConfig()
    numbers = validate_structure(structure, config)
    n = len(numbers)
    centers, neighbors, _images, dists = structure.get_neighbor_list(config.cutoff)
    centers = np.asarray(centers, dtype=np.int64)
    neighbors = np.asarray(neighbors, dtype=np.int64)
    dists = np.asarray(dists, dtype=np.float64)
    if dists.size and dists.min() < config.min_distance:
        i = int(np.argmin(dists))
        raise StructureError(
            f"sites {centers[i]} and {neighbors[i]} overlap (distance {dists[i]:.3g} Å < "
            f"min_distance={config.min_distance} Å)")
    counts = np.bincount(centers, minlength=n)
    if config.neighbor_mode == "kong2023":
        return _kong2023_graph(numbers, centers, neighbors, dists, counts, config)
    if not counts.all():
        i = int(np.flatnonzero(counts == 0)[0])
        raise StructureError(
            f"site {i} ({structure[i].specie}) has no neighbour within the {config.cutoff} Å cutoff: its "
            "descriptor would carry no environment information (is the lattice in Å?)")
    order = np.lexsort((dists, centers))
    centers, neighbors, dists = centers[order], neighbors[order], dists[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    kth = dists[starts + np.minimum(counts, config.max_neighbors) - 1]
    keep = dists <= kth[centers] + config.tie_tolerance
    edge_index = np.stack([neighbors[keep], centers[keep]])
    return CrystalGraph(numbers, edge_index, dists[keep].astype(np.float32))


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
