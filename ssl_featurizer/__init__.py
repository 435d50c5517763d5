"""ssl-featurizer: pretrained self-supervised crystal-GNN descriptors for matminer and scikit-learn.

Pipeline: structure → :mod:`~ssl_featurizer.graph` → :mod:`~ssl_featurizer.encoder` →
:mod:`~ssl_featurizer.embed` (layer embeddings) → :mod:`~ssl_featurizer.pooling` →
:mod:`~ssl_featurizer.featurizers`; :mod:`~ssl_featurizer.training` trains the encoder and
:mod:`~ssl_featurizer.cli` drives it all from the shell.

Heavy dependencies (torch, matminer) load on first use of a public name. ``StructureFeaturizer`` and
``SiteFeaturizer`` are neutral names of ``SSLStructureFeaturizer`` and ``SSLSiteFeaturizer`` (the same classes),
for foreign, supervised encoders (``model="sevennet-0"``, ``"chgnet"``) read through the same featurizers.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "SSLStructureFeaturizer": "ssl_featurizer.featurizers.structure",
    "SSLSiteFeaturizer": "ssl_featurizer.featurizers.site",
    "StructureFeaturizer": "ssl_featurizer.featurizers.structure",
    "SiteFeaturizer": "ssl_featurizer.featurizers.site",
    "Encoder": "ssl_featurizer.models.foreign",
    "list_foreign_models": "ssl_featurizer.models.registry",
    "FeaturizationError": "ssl_featurizer.featurizers.base",
    "FeaturizationWarning": "ssl_featurizer.featurizers.base",
    "list_models": "ssl_featurizer.models.registry",
    "load_model": "ssl_featurizer.models.registry",
    "ModelError": "ssl_featurizer.models.registry",
    "GraphConfig": "ssl_featurizer.graph.crystal_graph",
    "StructureError": "ssl_featurizer.graph.crystal_graph",
    "build_graph": "ssl_featurizer.graph.crystal_graph",
    "as_structure": "ssl_featurizer.graph.crystal_graph",
    "ordered_approximant": "ssl_featurizer.graph.ordering",
    "SuspiciousStructureWarning": "ssl_featurizer.featurizers.base",
    "embed_structures": "ssl_featurizer.embed",
    "NEGNNRegressor": "ssl_featurizer.negnn",
    "SimilarityIndex": "ssl_featurizer.similarity",
    "KNNDistanceDomain": "ssl_featurizer.domain",
}

__all__ = [
    "Encoder",
    "FeaturizationError",
    "FeaturizationWarning",
    "GraphConfig",
    "KNNDistanceDomain",
    "ModelError",
    "NEGNNRegressor",
    "SSLSiteFeaturizer",
    "SSLStructureFeaturizer",
    "SimilarityIndex",
    "SiteFeaturizer",
    "StructureError",
    "StructureFeaturizer",
    "SuspiciousStructureWarning",
    "__version__",
    "as_structure",
    "build_graph",
    "embed_structures",
    "list_foreign_models",
    "list_models",
    "load_model",
    "ordered_approximant",
]

if TYPE_CHECKING:  # pragma: no cover
    from ssl_featurizer.domain import KNNDistanceDomain
    from ssl_featurizer.embed import embed_structures
    from ssl_featurizer.featurizers.base import FeaturizationError, FeaturizationWarning, SuspiciousStructureWarning
    from ssl_featurizer.featurizers.site import SiteFeaturizer, SSLSiteFeaturizer
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer, StructureFeaturizer
    from ssl_featurizer.graph.crystal_graph import GraphConfig, StructureError, as_structure, build_graph
    from ssl_featurizer.graph.ordering import ordered_approximant
    from ssl_featurizer.models.foreign import Encoder
    from ssl_featurizer.models.registry import ModelError, list_foreign_models, list_models, load_model
    from ssl_featurizer.negnn import NEGNNRegressor
    from ssl_featurizer.similarity import SimilarityIndex


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ssl_featurizer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
