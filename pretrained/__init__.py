"""Shipped pretrained models (installed as ``ssl_featurizer.pretrained``): ``<name>/<version>/``."""
