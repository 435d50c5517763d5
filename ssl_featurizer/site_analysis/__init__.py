"""Site analysis: which chemistry and which local environments site embeddings encode, layer by layer.

The analysis of Kong et al.'s section on magnetic materials, for any site task: the sites and what was left out
(:mod:`~ssl_featurizer.site_analysis.data`), what each depth separates (:mod:`~ssl_featurizer.site_analysis.scores`)
and its figures (:mod:`~ssl_featurizer.site_analysis.figures`). The project's MAGNDATA study built on it lives
with the studies (``studies/magnetism_analysis.py``).

Usage::

    from ssl_featurizer.site_analysis import MagneticSites, site_descriptors, coordination_labels, separation_scores

    sites = MagneticSites.from_task(task)            # a site Task: (structure, site_index) inputs
    embeddings, crystalnn, width = site_descriptors(sites)
    labels = {"element": sites.table["element"].to_numpy(), "cn": coordination_labels(crystalnn)["cn"].to_numpy()}
    scores = separation_scores(embeddings, labels, sites.table["id"].to_numpy(), width=width)
"""

from ssl_featurizer.site_analysis.data import MagneticSites, read_magnetic_cifs, site_descriptors
from ssl_featurizer.site_analysis.figures import embed_2d, plot_cosine_similarity, plot_separation, plot_site_maps
from ssl_featurizer.site_analysis.scores import (
                                                 coordination_labels,
                                                 cosine_pairs,
                                                 depth_layer_sets,
                                                 input_element_classes,
                                                 layer_columns,
                                                 separation_scores,
)

__all__ = ["MagneticSites", "coordination_labels", "cosine_pairs", "depth_layer_sets", "embed_2d",
           "input_element_classes", "layer_columns", "plot_cosine_similarity", "plot_separation", "plot_site_maps",
           "read_magnetic_cifs", "separation_scores", "site_descriptors"]
