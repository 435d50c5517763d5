"""The matminer/scikit-learn featurizers (structure and site) and what they share."""

#: The layer string used when none is given — h0 ‖ h1, each atom and its neighbours — by both
#: featurizers, ``ssl-featurizer featurize`` and ``ssl-featurizer demo``.
DEFAULT_LAYERS = "01"
