"""Applicability domain: how far a new row lies from the training rows, in descriptor space.

:class:`KNNDistanceDomain` is a scikit-learn transformer fitted on the training rows' descriptors (so it sits in a
``Pipeline`` after a featurizer). A row's *distance* is its mean euclidean distance to its ``n_neighbors``
nearest training rows (after standardisation); its *domain score* is that distance divided by the
``percentile``-th percentile of the training rows' own leave-one-out distances. A score above 1 means the row is
farther from the training data than all but ``100 - percentile`` % of the training rows are from the rest of it:
``in_domain`` is False and a model's prediction for it deserves less trust. How well the score ranks real errors
is measured in ``docs/similarity.md``.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data


def _finite(X: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise ValueError(f"Input X contains NaN or infinity in {bad.size} row(s) (first at positions "
                         f"{bad[:5].tolist()}); a failed featurization gives a NaN row: drop those rows first")
    return X


class KNNDistanceDomain(TransformerMixin, BaseEstimator):
    """Applicability-domain score: mean distance to the k nearest training rows, calibrated on the training set.

    Args:
        n_neighbors: training rows averaged over (k).
        percentile: percentile of the training rows' leave-one-out distances that maps to a score of 1 (and is the
            ``in_domain`` threshold).
        standardize: z-score every column with the training mean and standard deviation before measuring
            distances (constant columns are only centred).

    Attributes:
        n_features_in_: number of columns seen in ``fit``.
        feature_names_in_: column names of a DataFrame given to ``fit``.
        mean_: column means of the training rows (zeros when ``standardize=False``).
        scale_: column standard deviations of the training rows (ones when ``standardize=False``; constant
            columns get 1).
        neighbors_: the fitted ``sklearn.neighbors.NearestNeighbors`` over the standardised training rows.
        train_distances_: each training row's mean distance to its k nearest *other* training rows.
        threshold_: the ``percentile``-th percentile of ``train_distances_`` (a domain score of 1).

    Shapes:
        mean_: ``(n_features,)``; scale_: ``(n_features,)``; train_distances_: ``(n_train,)``.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> domain = KNNDistanceDomain(n_neighbors=5).fit(rng.normal(size=(200, 3)))
        >>> domain.in_domain(np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0]])).tolist()
        [True, False]
    """

    # checked in fit by scikit-learn (``BaseEstimator._validate_params``)
    _parameter_constraints: ClassVar[dict] = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "percentile": [Interval(Real, 0, 100, closed="both")],
        "standardize": ["boolean"],
    }

    def __init__(self, n_neighbors: int = 5, percentile: float = 95.0, standardize: bool = True):
        self.n_neighbors = n_neighbors
        self.percentile = percentile
        self.standardize = standardize

    def fit(self, X: Any, y: Any = None) -> KNNDistanceDomain:
        """Store the (standardised) training rows and calibrate the threshold by leave-one-out.

        Args:
            X: training descriptor rows (no NaN rows).
            y: ignored.

        Shapes:
            X: ``(n_train, n_features)`` with ``n_train > n_neighbors``.
        """
        self._validate_params()
        X = _finite(validate_data(self, X, ensure_all_finite=False, dtype=np.float64))
        if len(X) <= self.n_neighbors:
            raise ValueError(f"n_neighbors={self.n_neighbors} needs at least {self.n_neighbors + 1} training rows "
                             f"(leave-one-out calibration), got n_samples={len(X)}")
        if self.standardize:
            self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
            self.scale_[self.scale_ == 0] = 1.0
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        from sklearn.neighbors import NearestNeighbors

        self.neighbors_ = NearestNeighbors(n_neighbors=self.n_neighbors, algorithm="brute").fit(
            (X - self.mean_) / self.scale_)
        dist, _ = self.neighbors_.kneighbors()  # no argument: each training row's neighbours without itself
        self.train_distances_ = dist.mean(axis=1)
        self.threshold_ = float(np.percentile(self.train_distances_, self.percentile))
        return self

    def mean_distance(self, X: Any) -> np.ndarray:
        """Mean (standardised) euclidean distance of each row to its ``n_neighbors`` nearest training rows.

        Shapes:
            X: ``(m, n_features)``; returns ``(m,)``.
        """
        check_is_fitted(self)
        X = _finite(validate_data(self, X, reset=False, ensure_all_finite=False, dtype=np.float64))
        dist, _ = self.neighbors_.kneighbors((X - self.mean_) / self.scale_)
        return dist.mean(axis=1)

    def domain_score(self, X: Any) -> np.ndarray:
        """Mean distance divided by ``threshold_``: 1 at the calibration percentile, larger is farther out.

        (Not named ``score``: in scikit-learn ``score(X, y)`` rates an estimator against labels.)

        Shapes:
            X: ``(m, n_features)``; returns ``(m,)``.
        """
        distance = self.mean_distance(X)
        return distance / self.threshold_ if self.threshold_ > 0 else np.where(distance > 0, np.inf, 0.0)

    def in_domain(self, X: Any) -> np.ndarray:
        """True for rows whose domain score is at most 1.

        Shapes:
            X: ``(m, n_features)``; returns ``(m,)`` bool.
        """
        return self.domain_score(X) <= 1.0

    def transform(self, X: Any) -> np.ndarray:
        """The domain score as a one-column matrix (for ``Pipeline`` / ``FeatureUnion`` use).

        Shapes:
            X: ``(m, n_features)``; returns ``(m, 1)``.
        """
        return self.domain_score(X)[:, None]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``["domain_score"]``."""
        check_is_fitted(self)
        return np.asarray(["domain_score"], dtype=object)
