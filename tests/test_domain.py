"""KNNDistanceDomain: the scikit-learn contract, leave-one-out calibration against brute force, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from ssl_featurizer.domain import KNNDistanceDomain


@parametrize_with_checks([KNNDistanceDomain()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_clone_get_set_params_and_not_fitted():
    domain = KNNDistanceDomain(n_neighbors=3, percentile=90.0, standardize=False)
    assert domain.get_params() == {"n_neighbors": 3, "percentile": 90.0, "standardize": False}
    copy = clone(domain.set_params(n_neighbors=4))
    assert copy.get_params()["n_neighbors"] == 4 and not hasattr(copy, "threshold_")
    with pytest.raises(NotFittedError):
        copy.domain_score(np.zeros((1, 2)))


def test_leave_one_out_distances_and_threshold_match_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) * [1.0, 10.0, 0.1]
    X[1] = X[0]  # a duplicate row is a neighbour at distance 0, not "itself"
    domain = KNNDistanceDomain(n_neighbors=4, percentile=80.0).fit(X)
    Z = (X - X.mean(0)) / X.std(0)
    d = np.sqrt(((Z[:, None] - Z[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    loo = np.sort(d, axis=1)[:, :4].mean(1)
    np.testing.assert_allclose(domain.train_distances_, loo, rtol=1e-10)
    assert domain.threshold_ == pytest.approx(np.percentile(loo, 80.0))
    queries = rng.normal(size=(5, 3)) * [1.0, 10.0, 0.1]
    zq = (queries - X.mean(0)) / X.std(0)
    dq = np.sqrt(((zq[:, None] - Z[None]) ** 2).sum(-1))
    np.testing.assert_allclose(domain.domain_score(queries), np.sort(dq, 1)[:, :4].mean(1) / domain.threshold_)
    np.testing.assert_array_equal(domain.transform(queries)[:, 0], domain.domain_score(queries))
    assert domain.get_feature_names_out().tolist() == ["domain_score"]


def test_in_domain_separates_far_rows():
    rng = np.random.default_rng(1)
    domain = KNNDistanceDomain().fit(rng.normal(size=(300, 5)))
    near, far = rng.normal(size=(50, 5)) * 0.5, rng.normal(size=(50, 5)) + 8.0
    assert domain.in_domain(near).mean() > 0.9 and not domain.in_domain(far).any()


def test_bad_input_gives_clear_errors():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="needs at least 6 training rows"):
        KNNDistanceDomain(n_neighbors=5).fit(rng.normal(size=(5, 2)))
    with pytest.raises(ValueError, match="'n_neighbors' parameter of KNNDistanceDomain must be an int in the range"):
        KNNDistanceDomain(n_neighbors=0).fit(rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="'percentile' parameter of KNNDistanceDomain must be a float in the range"):
        KNNDistanceDomain(percentile=101).fit(rng.normal(size=(10, 2)))
    X = rng.normal(size=(10, 2))
    X[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinity in 1 row\(s\) \(first at positions \[3\]\)"):
        KNNDistanceDomain().fit(X)
    domain = KNNDistanceDomain().fit(rng.normal(size=(10, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but KNNDistanceDomain is expecting 2"):
        domain.domain_score(np.zeros((1, 3)))


def test_sits_in_a_pipeline_after_the_featurizer(crystals):
    from sklearn.pipeline import make_pipeline

    from ssl_featurizer import SSLStructureFeaturizer

    pipe = make_pipeline(SSLStructureFeaturizer(layers="01"), KNNDistanceDomain(n_neighbors=3))
    structures = list(crystals.values())
    pipe.fit(structures[:20])
    scores = pipe.transform(structures)
    assert scores.shape == (27, 1) and np.isfinite(scores).all() and (scores >= 0).all()
