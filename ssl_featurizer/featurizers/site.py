"""Site-level descriptor: one atom's layer embeddings from the pretrained self-supervised GNN."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssl_featurizer.embed import embed_structures
from ssl_featurizer.featurizers.base import SSLFeaturizerBase
from ssl_featurizer.featurizers.inputs import as_site_list, structures_from_dicts


def _structure_key(structure: Any) -> bytes | None:
    try:
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(structure.lattice.matrix).tobytes())
        h.update(np.ascontiguousarray(structure.frac_coords).tobytes())
        h.update(repr([str(sp) for sp in structure.species]).encode())
        return h.digest()
    except (AttributeError, ValueError, TypeError):
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

    def __init__(self, model: str = "default", layers: str | Sequence[int] = "01", batch_size: int = 64,
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

    def _all_layer_embeddings(self, structures: list) -> tuple[list[np.ndarray | None], list[str | None]]:
        """All-layer atom embeddings of each structure, through the per-instance content cache."""
        model = self.pretrained_model()
        cache: OrderedDict = self.__dict__.setdefault("_cache_embeddings", OrderedDict())
        keys = [(model.name, _structure_key(s)) for s in structures]
        keys = [k if k[1] is not None else ("uncached", i) for i, k in enumerate(keys)]
        todo: dict = {}
        for s, k in zip(structures, keys):
            if k not in cache:
                todo.setdefault(k, s)
        fresh = {}
        if todo:
            emb = embed_structures(model, list(todo.values()), tuple(range(model.n_layers + 1)),
                                   self.batch_size, self.n_jobs)
            fresh = dict(zip(todo, zip(emb.atoms, emb.errors)))
        result = [fresh[k] if k in fresh else cache[k] for k in keys]
        for k, value in fresh.items():
            if k[0] != "uncached":
                cache[k] = value
        for k in keys:
            if k in cache:
                cache.move_to_end(k)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)
        return [r[0] for r in result], [r[1] for r in result]

    def _featurize_batch(self, pairs: list, progress: Any = False) -> tuple[np.ndarray, list[str | None]]:
        model = self.pretrained_model()
        layers = self.layer_indices(model)
        offsets = np.concatenate([[0], np.cumsum(model.layer_widths)])
        cols = np.concatenate([np.arange(offsets[lay], offsets[lay + 1]) for lay in layers])
        atoms, errors = self._all_layer_embeddings(structures_from_dicts([p[0] for p in pairs]))
        rows = np.full((len(pairs), len(cols)), np.nan)
        for i, ((_, idx), emb) in enumerate(zip(pairs, atoms)):
            if emb is None:
                continue
            if not isinstance(idx, (int, np.integer)) or not 0 <= idx < len(emb):
                errors[i] = f"site index {idx!r} is out of range for a structure of {len(emb)} sites"
                continue
            rows[i] = emb[idx, cols]
        return rows, errors


#: the same class under a neutral name: the featurizer serves foreign, supervised encoders too (``model="sevennet-0"``)
SiteFeaturizer = SSLSiteFeaturizer
