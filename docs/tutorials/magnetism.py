"""Magnetism tutorial: MAGNDATA site embeddings, what each layer separates (needs ../shared/data).

Run from a folder next to ``shared`` (or set SSL_FEATURIZER_SHARED): python docs/tutorials/magnetism.py
"""

# --8<-- [start:load]
import sys
from pathlib import Path

from ssl_featurizer.site_analysis import coordination_labels, separation_scores, site_descriptors

# the MAGNDATA site task is the project's data: its loader lives with the studies (studies/magnetism_analysis.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "studies"))
from magnetism_analysis import load_site_moments  # noqa: E402

sites = load_site_moments("kong2023", max_sites=80)  # whole materials, about 80 labelled sites
print(len(sites), "sites;", len(sites.failures), "rows left out, each with its reason")
# --8<-- [end:load]

# --8<-- [start:scores]
embeddings, crystalnn, width = site_descriptors(sites)  # all layers h0..h5, and CrystalNN fingerprints
labels = {"element": sites.table["element"].to_numpy(),
          "coordination": coordination_labels(crystalnn)["cn"].to_numpy()}
scores = separation_scores(embeddings, labels, sites.table["id"].to_numpy(), width=width, min_class_size=5,
                           min_class_groups=2, n_splits=3)
print(scores.head(12).to_string(index=False))
# --8<-- [end:scores]
