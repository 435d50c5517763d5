"""Structure-level descriptor: pooled layer embeddings of the pretrained self-supervised GNN."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from ssl_featurizer.embed import embed_structures
from ssl_featurizer.featurizers import DEFAULT_LAYERS
from ssl_featurizer.featurizers.base import SSLFeaturizerBase, warn_suspicious
from ssl_featurizer.featurizers.inputs import as_structure_list, decode_structures
from ssl_featurizer.pooling import parse_pooling, pool

#: named configurations, each reachable in one line (:meth:`SSLStructureFeaturizer.from_preset`):
#:
#: - ``"dev-choice"``: layers ``0123``, pooling mean + std — the configuration the nested choice (layer set × pooling
#:   by kernel ridge inner cross-validation on training rows) picked most often for the default model
#:   ``cgcnn-ssl-mp2025@2.0`` on the development tasks, which are not benchmark tasks (MP-2018 formation energy and
#:   PBE gap of 2,000 JARVIS-Leaderboard training structures with no benchmark twin; 4 of 6 splits;
#:   ``docs/figures/default_choice.csv``, written by ``studies/choose_default.py``; that menu had the layer sets
#:   0, 01, 012, 0123 and the poolings mean, mean + std). The featurizer's defaults (``01``, mean) stay the cheap
#:   general start; on your own data, ``ssl_featurizer.bench.compare`` chooses.
PRESETS: dict[str, dict[str, Any]] = {"dev-choice": {"layers": "0123", "pooling": ("mean", "std")}}


class SSLStructureFeaturizer(SSLFeaturizerBase):
    """Pooled, range-tunable atom embeddings of a frozen self-supervised crystal GNN.

    Layer ``l`` ("NE\\ *l*") of the encoder sees ``l`` hops of neighbours; ``layers="012"`` concatenates
    h0, h1 and h2 (Kong et al., arXiv 2211.03563). Each structure's atom vectors are pooled with
    every requested pooling and the results concatenated: ``len(pooling) * len(layers) * width``
    features (widths per layer: ``model.layer_widths``), ordered pooling → layer → dimension.

    A matminer ``BaseFeaturizer`` (``featurize``, ``featurize_dataframe``, ``feature_labels``,
    ``citations``, ``implementors``) and a scikit-learn transformer (``fit``/``transform``,
    ``get_feature_names_out``, ``set_output``, ``clone``, pickling). Inference is batched in this
    process; ``n_jobs`` only parallelises graph building.

    Args:
        model: ``"default"``, a name from :func:`ssl_featurizer.list_models`, a model directory, or a foreign
            encoder from :func:`ssl_featurizer.list_foreign_models` (e.g. ``"sevennet-0"`` with ``layers="12345"``).
        layers: the paper's layer string ("0", "01", "012", ...) or a tuple of ints.
        pooling: one or more of "mean", "sum", "std", "min", "max", "density" ("sum" is extensive;
            "density" is the sum per cell volume in Å⁻³, intensive).
        batch_size: structures per forward pass (results do not depend on it).
        n_jobs: processes for graph building (1: none; -1: all cores).
        ignore_errors: in ``transform``, give failed structures a NaN row (and a warning with the
            reasons) instead of raising. ``featurize_dataframe`` has its own ``ignore_errors``.
        progress: progress bar in ``transform``.

    Examples:
        >>> from pymatgen.core import Lattice, Structure
        >>> nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
        >>> f = SSLStructureFeaturizer(layers="01", pooling=("mean", "std"))
        >>> X = f.fit_transform([nacl])
        >>> X.shape
        (1, 256)
        >>> f.feature_labels()[:2]
        ['mean NE0_0', 'mean NE0_1']
    """

    _parameter_constraints: ClassVar[dict] = {**SSLFeaturizerBase._parameter_constraints, "pooling": [str, "array-like"],
                                    "progress": ["boolean"]}

    @classmethod
    def from_preset(cls, preset: str, **kwargs: Any) -> SSLStructureFeaturizer:
        """A featurizer with a named configuration of :data:`PRESETS` (other arguments as the constructor's).

        Example: ``SSLStructureFeaturizer.from_preset("dev-choice")`` (layers 0123, mean + std pooling).

        Raises:
            ValueError: an unknown preset name.
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **kwargs})

    def __init__(self, model: str = "default", layers: str | Sequence[int] = DEFAULT_LAYERS,
                 pooling: str | Sequence[str] = ("mean",), batch_size: int = 64, n_jobs: int = 1,
                 ignore_errors: bool = False, progress: bool = False):
        self.model = model
        self.layers = layers
        self.pooling = pooling
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.ignore_errors = ignore_errors
        self.progress = progress

    def _check_params(self, refit: bool = False):
        parse_pooling(self.pooling)
        return super()._check_params(refit)

    def feature_labels(self) -> list[str]:
        """``"<pooling> NE<layer>_<dim>"`` for every output column."""
        model = self.pretrained_model()
        layers = self.layer_indices(model)
        widths = model.layer_widths
        return [f"{p} NE{lay}_{k}" for p in parse_pooling(self.pooling) for lay in layers for k in range(widths[lay])]

    def featurize(self, structure: Any) -> list[float]:
        """Descriptor of one structure (a list of floats). Raises on invalid input."""
        return self._featurize_one(structure)

    # ---- internals ----------------------------------------------------------------------------
    def _coerce(self, X: Any) -> tuple[list, list | None]:
        structures, labels = as_structure_list(X)
        # matminer passes rows of a DataFrame selection as 1-element arrays
        return [s[0] if isinstance(s, (list, tuple, np.ndarray)) and len(s) == 1 else s for s in structures], labels

    def _featurize_batch(self, structures: list, progress: bool | Callable[[int], None] = False
                         ) -> tuple[np.ndarray, list[str | None]]:
        model = self.pretrained_model()
        layers = self.layer_indices(model)
        pooling = parse_pooling(self.pooling)
        structures = decode_structures(structures)
        emb = embed_structures(model, structures, layers, self.batch_size, self.n_jobs, progress)
        warn_suspicious(emb.warnings)
        rows = np.full((len(structures), len(pooling) * sum(model.layer_widths[lay] for lay in layers)), np.nan)
        for i, atoms in enumerate(emb.atoms):
            if atoms is not None:
                rows[i] = pool(atoms, pooling, structures[i].volume)
        return rows, emb.errors


#: the same class under a neutral name: the featurizer serves foreign, supervised encoders too (``model="sevennet-0"``)
StructureFeaturizer = SSLStructureFeaturizer
