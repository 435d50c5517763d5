"""Site-level descriptor: one atom's layer embeddings from the pretrained self-supervised GNN."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
from sklearn.utils._param_validation import Interval

from ssl_featurizer.embed import embed_structures
from ssl_featurizer.featurizers import DEFAULT_LAYERS
from ssl_featurizer.featurizers.base import SSLFeaturizerBase, warn_suspicious
from ssl_featurizer.featurizers.inputs import as_site_list, decode_structures


def _structure_key(structure: Any) -> bytes | None:
    """A digest of everything of a decoded structure the descriptor depends on (lattice, periodicity,
    coordinates, species with occupancies), or None for an input that is not a structure."""
    from pymatgen.core import IStructure

    if not isinstance(structure, IStructure):
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
    h.update(np.asarray(structure.lattice.pbc, dtype=bool).tobytes())
    h.update(np.ascontiguousarray(structure.frac_coords, dtype=np.float64).tobytes())
    h.update(repr([sorted((str(sp), float(occ)) for sp, occ in site.species.items()) for site in structure]).encode())
    return h.digest()


def _site_index_error(idx: Any, n_sites: int) -> str | None:
    """Why ``idx`` is not a site index of a structure of ``n_sites`` sites (None if it is one)."""
    if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
        return f"site index {idx!r} is not an integer (got {type(idx).__name__})"
    if not 0 <= idx < n_sites:
        return f"site index {idx!r} is out of range for a structure of {n_sites} sites"
    return None


class SSLSiteFeaturizer(SSLFeaturizerBase):
    """Layer embeddings of one site of a crystal, from a frozen self-supervised crystal GNN.

    ``featurize(structure, idx)`` returns site ``idx``'s vector for the chosen layers
    (``len(layers) * width`` features). The forward pass of a structure is cached (by content), so
    featurizing all N sites of a structure costs one pass — e.g. inside matminer's
    ``SiteStatsFingerprint``.

    Args:
        model: ``"default"``, a name from :func:`ssl_featurizer.list_models`, a model directory, or a foreign
            encoder from :func:`ssl_featurizer.list_foreign_models`.
        layers: the paper's layer string ("0", "01", ...) or a tuple of ints.
        batch_size: structures per forward pass in ``featurize_many``/``transform``.
        n_jobs: processes for graph building.
        ignore_errors: in ``transform``, NaN rows instead of raising.
        cache_size: number of structures whose embeddings are kept.

    Examples:
        >>> from pymatgen.core import Lattice, Structure
        >>> nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
        >>> len(SSLSiteFeaturizer(layers="1").featurize(nacl, 0))
        64
    """

    _parameter_constraints: ClassVar[dict] = {**SSLFeaturizerBase._parameter_constraints,
                                    "cache_size": [Interval(Integral, 0, None, closed="left")]}

    def __init__(self, model: str = "default", layers: str | Sequence[int] = DEFAULT_LAYERS, batch_size: int = 64,
                 n_jobs: int = 1, ignore_errors: bool = False, cache_size: int = 64):
        self.model = model
        self.layers = layers
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.ignore_errors = ignore_errors
        self.cache_size = cache_size

    def feature_labels(self) -> list[str]:
        """``"NE<layer>_<dim>"`` for every output column."""
        model = self.pretrained_model()
        return [f"NE{lay}_{k}" for lay in self.layer_indices(model) for k in range(model.layer_widths[lay])]

    def featurize(self, structure: Any, idx: int) -> list[float]:
        """Descriptor of site ``idx`` of ``structure``. Raises on invalid input or index."""
        return self._featurize_one((structure, idx))

    # ---- internals ----------------------------------------------------------------------------
    def _coerce(self, X: Any) -> tuple[list, list | None]:
        return as_site_list(X)

    def _all_layer_embeddings(self, structures: list
                              ) -> tuple[list[np.ndarray | None], list[str | None], list[str | None]]:
        """All-layer atom embeddings of each structure, the failure reasons and the warnings, through the
        per-instance content cache.

        Only successes are cached (a failure is recomputed, so it can never stand in for a good input), the key
        covers everything the descriptor depends on, and the cache is shared safely by threads: hits are
        copied out under a lock, misses computed outside it.
        """
        model = self.pretrained_model()
        lock = self.__dict__.setdefault("_cache_lock", threading.Lock())
        keys = [None if (k := _structure_key(s)) is None else (model.fingerprint, k) for s in structures]
        found: dict = {}
        with lock:
            cache: OrderedDict = self.__dict__.setdefault("_cache_embeddings", OrderedDict())
            for k in keys:
                if k is not None and k in cache:
                    found[k] = cache[k]
                    cache.move_to_end(k)
        todo = [i for i, k in enumerate(keys) if k is None or k not in found]
        first: dict = {}  # one forward pass per distinct missing structure
        for i in todo:
            first.setdefault(keys[i] if keys[i] is not None else ("input", i), i)
        results: dict = {}
        if first:
            emb = embed_structures(model, [structures[i] for i in first.values()], tuple(range(model.n_layers + 1)),
                                   self.batch_size, self.n_jobs)
            results = dict(zip(first, zip(emb.atoms, emb.errors, emb.warnings)))
        with lock:
            for k, (atoms, error, note) in results.items():
                if error is None and k[0] == model.fingerprint:
                    cache[k] = (atoms, None, note)
            while len(cache) > max(int(self.cache_size), 0):
                cache.popitem(last=False)
        out = [found[k] if k is not None and k in found else results[k if k is not None else ("input", i)]
               for i, k in enumerate(keys)]
        return [a for a, _, _ in out], [e for _, e, _ in out], [n for _, _, n in out]

    def _featurize_batch(self, pairs: list, progress: Any = False) -> tuple[np.ndarray, list[str | None]]:
        model = self.pretrained_model()
        layers = self.layer_indices(model)
        offsets = np.concatenate([[0], np.cumsum(model.layer_widths)])
        cols = np.concatenate([np.arange(offsets[lay], offsets[lay + 1]) for lay in layers])
        atoms, errors, notes = self._all_layer_embeddings(decode_structures([p[0] for p in pairs]))
        warn_suspicious(notes)
        rows = np.full((len(pairs), len(cols)), np.nan)
        for i, ((_, idx), emb) in enumerate(zip(pairs, atoms)):
            if emb is None:
                continue
            errors[i] = _site_index_error(idx, len(emb))
            if errors[i] is None:
                rows[i] = emb[int(idx), cols]
        return rows, errors


#: the same class under a neutral name: the featurizer serves foreign, supervised encoders too (``model="sevennet-0"``)
SiteFeaturizer = SSLSiteFeaturizer
