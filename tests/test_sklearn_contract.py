"""The scikit-learn estimator contract of both featurizers, on real structures.

sklearn's own checks (``sklearn.utils.estimator_checks``) that need only the estimator run as they are; the checks
that feed random float arrays (``check_fit2d_*``, ``check_transformer_general``, ``check_dont_overwrite_parameters``
and the like) cannot apply to a transformer whose input is crystal structures, so their intent is tested here
explicitly on structures: clone, get/set_params, no parameter touched by ``fit``, pickling, ``n_features_in_`` and
feature names, and ``fit`` idempotence.
"""

from __future__ import annotations

import copy
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from ssl_featurizer import SSLSiteFeaturizer, SSLStructureFeaturizer


def structure_input(crystals):
    names = ["Si (diamond)", "NaCl (rock salt)", "SrTiO3 (perovskite)"]
    return [crystals[n] for n in names if n in crystals] or list(crystals.values())[:3]


def site_input(crystals):
    return [(s, 0) for s in structure_input(crystals)]


ESTIMATORS = {
    "structure": (lambda: SSLStructureFeaturizer(layers="01", pooling=("mean", "std")), structure_input),
    "site": (lambda: SSLSiteFeaturizer(layers="01"), site_input),
}


@pytest.fixture(params=sorted(ESTIMATORS))
def case(request, crystals):
    make, data = ESTIMATORS[request.param]
    return request.param, make, data(crystals)


@pytest.mark.parametrize("check", [check_get_params_invariance, check_set_params, check_no_attributes_set_in_init,
                                   check_parameters_default_constructible], ids=lambda c: c.__name__)
def test_sklearn_checks_that_need_no_array_input(case, check):
    name, make, _ = case
    check(name, make())


def test_clone_is_an_unfitted_copy_with_equal_params(case):
    _, make, X = case
    fitted = make().fit(X)
    copy_ = clone(fitted)
    assert copy_.get_params() == fitted.get_params()
    assert not [k for k in vars(copy_) if k.endswith("_") and not k.startswith("_")]
    assert fitted.model_fingerprint_ and fitted.fitted_model_ == fitted.model


def test_set_params_round_trip_and_fit_validates(case):
    _, make, X = case
    est = make()
    params = est.get_params()
    est.set_params(layers="012")
    assert est.get_params()["layers"] == "012"
    est.set_params(**params)
    assert est.get_params() == params
    est.set_params(layers="9")  # stored as given (sklearn: no validation in set_params) ...
    with pytest.raises(ValueError, match="layer"):
        est.fit(X)  # ... refused by fit


def test_fit_does_not_touch_parameters(case):
    _, make, X = case
    est = make()
    before = copy.deepcopy(est.get_params())
    est.fit(X)
    after = est.get_params()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] == value and type(after[key]) is type(value), key


def test_pickled_and_joblib_copies_transform_identically(case, tmp_path):
    _, make, X = case
    est = make().fit(X)
    expected = est.transform(X)
    for restored in (pickle.loads(pickle.dumps(est)),
                     joblib.load(joblib.dump(est, tmp_path / "est.joblib")[0])):
        assert restored.get_params() == est.get_params()
        assert restored.model_fingerprint_ == est.model_fingerprint_
        np.testing.assert_array_equal(restored.transform(X), expected)


def test_fit_is_idempotent_and_output_matches_feature_names(case):
    _, make, X = case
    est = make()
    first = est.fit(X).transform(X)
    state = {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}
    second = est.fit(X).transform(X)
    np.testing.assert_array_equal(first, second)
    assert {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}.keys() == state.keys()
    names = est.get_feature_names_out()
    assert first.shape == (len(X), len(names)) == (len(X), est.n_features_out_)
    assert len(set(names)) == len(names)


def test_n_features_in_follows_sklearn_for_non_array_input(crystals):
    """A list of structures has no feature columns: no ``n_features_in_``; a DataFrame input records its columns
    (what sklearn's ``feature_names_in_`` means), and the output names never depend on the input's names."""
    X = structure_input(crystals)
    est = SSLStructureFeaturizer().fit(X)
    assert not hasattr(est, "n_features_in_") and not hasattr(est, "feature_names_in_")
    frame = pd.DataFrame({"structure": X})
    est_df = SSLStructureFeaturizer().fit(frame)
    assert est_df.n_features_in_ == 1 and list(est_df.feature_names_in_) == ["structure"]
    assert list(est_df.get_feature_names_out()) == list(est.get_feature_names_out())
    np.testing.assert_array_equal(est_df.transform(frame), est.transform(X))


def test_transform_without_fit_works_for_a_frozen_model(crystals):
    """``requires_fit=False``: the encoder is frozen, so transform validates and runs without fit."""
    X = structure_input(crystals)
    est = SSLStructureFeaturizer()
    assert not est.__sklearn_tags__().requires_fit
    np.testing.assert_array_equal(est.transform(X), SSLStructureFeaturizer().fit(X).transform(X))
