"""One interface for every encoder the featurizers can read, and the shared machinery of foreign encoders.

Our shipped models (:class:`~ssl_featurizer.models.loaded.PretrainedModel`) and the adapters of other
packages' pretrained networks (SevenNet: :mod:`ssl_featurizer.models.sevennet`; CHGNet:
:mod:`ssl_featurizer.models.chgnet`) both satisfy :class:`Encoder`: a name, a card, the sha256 of the weights
file, ``n_layers`` and the width of each layer. Layer ``l`` is the per-atom invariant vector after message-passing
block ``l``; layer 0 is the species embedding. A foreign encoder also satisfies :class:`LayerEncoder`: it embeds
structures itself (its own graphs, its own batching) through :meth:`ForeignEncoder.embed_layers`, which
:func:`ssl_featurizer.embed.embed_structures` calls, so pooling, site descriptors, the streaming command line,
Dask and caching work unchanged.

A foreign encoder never lets one structure's failure escape a batch: a structure it cannot take gets a reason
(the featurizers turn it into a NaN row under ``ignore_errors``); a batch whose forward pass fails is rerun one
structure at a time so that the reason lands on the structure that caused it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ssl_featurizer.graph.crystal_graph import (
    GraphConfig,
    StructureError,
    as_structure,
    pair_upper_bound,
    validate_structure,
)
from ssl_featurizer.models.loaded import ModelError

__all__ = ["Encoder", "ForeignEncoder", "LayerEncoder", "MissingExtraError", "file_sha256", "package_licence",
           "package_version"]


#: the optional extra that installs the foreign encoders' packages
EXTRA = "peer"
#: what every MPtrj-trained encoder's card says of its label overlap with MP-derived targets
MPTRJ_OVERLAP_NOTE = ("supervised on MP energies of (likely) many benchmark materials: for MP-energy-derived targets "
                      "its features may carry label information a frozen unsupervised encoder cannot see")


class MissingExtraError(ModelError, ImportError):
    """The package behind a foreign encoder is not installed; the message names the extra to install."""

    @classmethod
    def for_package(cls, what: str, package: str, exc: ImportError) -> MissingExtraError:
        """The error for ``what`` (e.g. "SevenNet models") whose ``package`` failed to import with ``exc``."""
        return cls(f"{what} need{'s' if not what.endswith('s') else ''} the {package} package: pip install "
                   f"'ssl-featurizer[{EXTRA}]' ({type(exc).__name__}: {exc})")


@runtime_checkable
class Encoder(Protocol):
    """What the featurizers need of any encoder: identity, provenance and layer shapes.

    Attributes:
        name: the name it is loaded by (``load_model(name)``).
        card: provenance (training data, licence, package version, weights file and its sha256, label overlap).
    """

    name: str
    card: dict[str, Any]

    @property
    def sha256(self) -> str:
        """sha256 of the weights file."""
        ...

    @property
    def fingerprint(self) -> str:
        """sha256 of everything that defines the descriptors (weights and settings); a fitted or restored
        featurizer checks it."""
        ...

    @property
    def n_layers(self) -> int:
        """Number of message-passing blocks L (layers 0..L)."""
        ...

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Features per atom of layers 0..L."""
        ...


@runtime_checkable
class LayerEncoder(Encoder, Protocol):
    """An :class:`Encoder` that embeds structures itself (every foreign encoder)."""

    def embed_layers(self, structures: Sequence[Any], layers: tuple[int, ...], batch_size: int = 16,
                     on_batch: Callable[[int], None] | None = None
                     ) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Per-atom vectors of ``layers`` (concatenated in that order) of each structure, or the reason it failed."""
        ...


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def package_version(package: str) -> str:
    """The installed version of a distribution (``"unknown"`` if its metadata is missing)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def package_licence(package: str) -> str:
    """The licence a distribution declares in its metadata (``"unknown"`` if none)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        return metadata(package).get("License") or "unknown"
    except PackageNotFoundError:
        return "unknown"


class ForeignEncoder:
    """Base of the adapters: validation, batching by edges, per-structure errors, layer selection.

    Subclasses implement :meth:`graph` (one structure → the package's graph object, or raise) and :meth:`forward`
    (a list of graphs → for each layer up to ``upto`` a ``(total atoms, width)`` float array of the batch's atoms
    in order). Results do not depend on the batching (to float32 round-off).

    Args:
        name: registry name.
        card: the card (see :class:`Encoder`).
        layer_widths: features per atom of layers 0..L.
        cutoff: the package's neighbour cutoff in Å (for the memory bound on atom pairs).
    """

    #: most neighbour pairs in one forward batch (unless a single structure has more)
    max_batch_edges = 16384
    #: a structure whose upper bound on (centre, neighbour) pairs within the cutoff exceeds this is refused with a
    #: reason (memory bound: SevenNet-0 needs ~25 kB per pair, ~0.7 GB for a 1,000-atom Si cell; the bound is ~3x
    #: above the true count for a homogeneous crystal); raise it on the loaded encoder for larger cells
    max_pairs = 2**18

    def __init__(self, name: str, card: dict[str, Any], layer_widths: Sequence[int], cutoff: float):
        self.name = name
        self.card = card
        self._widths = tuple(int(w) for w in layer_widths)
        self.cutoff = float(cutoff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, layers 0..{self.n_layers}, widths {self._widths})"

    @property
    def sha256(self) -> str:
        """sha256 of the weights file read from the installed package."""
        return self.card["weights"]["sha256"]

    @property
    def fingerprint(self) -> str:
        """sha256 of the weights' digest with the adapter's name, package version, cutoff and layer widths: what
        a fitted featurizer checks when it reloads the encoder by name."""
        settings = {"name": self.name, "weights_sha256": self.sha256, "card": {k: self.card.get(k) for k in
                    ("package", "package_version", "version")}, "cutoff": self.cutoff, "widths": list(self._widths)}
        return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()

    @property
    def n_layers(self) -> int:
        """Number of interaction blocks L (layers 0..L)."""
        return len(self._widths) - 1

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Invariant (scalar) features per atom of layers 0..L."""
        return self._widths

    # ---- hooks for subclasses -----------------------------------------------------------------
    def graph(self, structure: Any) -> tuple[Any, int]:
        """The package's graph of one structure and its number of edges; raise with the reason if it cannot."""
        raise NotImplementedError

    def forward(self, graphs: list[Any], upto: int) -> list[np.ndarray]:
        """Atom vectors of layers 0..``upto`` of a batch of graphs, atoms of the graphs in order."""
        raise NotImplementedError

    # ---- shared machinery -----------------------------------------------------------------------
    def check(self, structure: Any) -> Any:
        """The structure if this encoder can take it; raise :class:`StructureError` with the reason otherwise."""
        structure = as_structure(structure)
        numbers = validate_structure(structure, GraphConfig())  # ordered, finite, periodic, known elements
        unknown = sorted({int(z) for z in numbers} - set(self.elements()))
        if unknown:
            from pymatgen.core import Element

            symbols = ", ".join(Element.from_Z(z).symbol for z in unknown)
            raise StructureError(f"{self.name} was not trained on element(s) {symbols}")
        lattice = structure.lattice
        bound = pair_upper_bound(structure.frac_coords, lattice.matrix, lattice.volume, self.cutoff)
        if bound > self.max_pairs:
            raise StructureError(f"{self.name}: up to {bound:.3g} atom pairs within {self.cutoff:g} Å, more than "
                                 f"its max_pairs={self.max_pairs}: refused to bound memory (raise "
                                 f"load_model({self.name!r}).max_pairs for larger cells)")
        return structure

    def elements(self) -> Sequence[int]:
        """Atomic numbers the encoder knows."""
        raise NotImplementedError

    def embed_layers(self, structures: Sequence[Any], layers: tuple[int, ...], batch_size: int = 16,
                     on_batch: Callable[[int], None] | None = None
                     ) -> tuple[list[np.ndarray | None], list[str | None]]:
        """Per-atom vectors of ``layers`` of each structure (float64, columns layer by layer), or why it failed.

        Args:
            structures: pymatgen Structures (anything else gets a reason).
            layers: validated layer indices.
            batch_size: most structures per forward pass.
            on_batch: called with the number of structures done after each batch (failed ones included).
        """
        atoms: list[np.ndarray | None] = [None] * len(structures)
        errors: list[str | None] = [None] * len(structures)
        graphs: dict[int, tuple[Any, int, int]] = {}
        for i, s in enumerate(structures):
            try:
                checked = self.check(s)
                graphs[i] = (*self.graph(checked), len(checked))  # (graph, edges, atoms)
            except Exception as exc:  # noqa: BLE001 - any failure of the package becomes this structure's reason
                errors[i] = _reason(exc)
        if on_batch is not None and len(graphs) < len(structures):
            on_batch(len(structures) - len(graphs))
        ok = list(graphs)
        start = 0
        while start < len(ok):
            stop, edges = start, 0
            while stop < len(ok) and (stop == start or (stop - start < batch_size
                                                          and edges + graphs[ok[stop]][1] <= self.max_batch_edges)):
                edges += graphs[ok[stop]][1]
                stop += 1
            part = ok[start:stop]
            batch = [graphs[i][0] for i in part]
            for i, result in zip(part, self._run(batch, [graphs[i][2] for i in part], layers)):
                if isinstance(result, str):
                    errors[i] = result
                else:
                    atoms[i] = result
            if on_batch is not None:
                on_batch(len(part))
            start = stop
        return atoms, errors

    def _run(self, graphs: list[Any], sizes: list[int], layers: tuple[int, ...]) -> list[np.ndarray | str]:
        """One batch's selected layers per structure; a failing batch is rerun structure by structure."""
        try:
            out = self.forward(graphs, max(layers))
            block = np.concatenate([np.asarray(out[k], dtype=np.float64) for k in layers], axis=1)
            if len(block) != sum(sizes):
                raise RuntimeError(f"{len(block)} atom rows for {sum(sizes)} atoms")
            pieces = np.split(block, np.cumsum(sizes)[:-1])
        except Exception as exc:  # noqa: BLE001 - find the structure that failed
            if len(graphs) > 1:
                return [r for k in range(len(graphs)) for r in self._run(graphs[k:k + 1], sizes[k:k + 1], layers)]
            return [_reason(exc)]
        return [p if np.isfinite(p).all() else f"{self.name} gave non-finite atom features" for p in pieces]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, StructureError) else f"{type(exc).__name__}: {text}"
