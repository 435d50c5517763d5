"""NEGNNRegressor on small real tasks: learning, sklearn compatibility, pickling, bad inputs (seconds)."""

from __future__ import annotations

import io
import warnings

import joblib
import numpy as np
import pytest
from project_tasks import load_task
from pymatgen.core import Lattice, Molecule, Structure
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from ssl_featurizer import FeaturizationError, FeaturizationWarning, ModelError, NEGNNRegressor

FAST = {"max_epochs": 4, "patience": 2, "batch_size": 16, "width": 16, "n_conv": 2, "hidden": 16}


@pytest.fixture(scope="module")
def kvrh(shared_file):
    """300 random rows of the log10 bulk modulus task."""
    shared_file("tasks/kong2023_log_kvrh.json.gz")
    return load_task("kong2023_log_kvrh", shared_file("README.md").parent, limit=300, seed=1)


@pytest.fixture(scope="module")
def small(kvrh):
    return kvrh.inputs[:40], kvrh.y[:40]


def test_beats_the_mean_predictor_on_held_out_data(kvrh):
    train, test = np.arange(240), np.arange(240, 300)
    X_train, X_test = [kvrh.inputs[i] for i in train], [kvrh.inputs[i] for i in test]
    model = NEGNNRegressor(layers="01", max_epochs=25, patience=6, random_state=0).fit(X_train, kvrh.y[train])
    pred = model.predict(X_test)
    assert pred.shape == (60,) and np.isfinite(pred).all()
    dummy = DummyRegressor().fit(np.zeros((240, 1)), kvrh.y[train]).predict(np.zeros((60, 1)))
    mae, mae_dummy = mean_absolute_error(kvrh.y[test], pred), mean_absolute_error(kvrh.y[test], dummy)
    assert mae < 0.7 * mae_dummy, (mae, mae_dummy)
    assert model.score(X_test, kvrh.y[test]) > 0.3
    # fitted state: early stopping kept the best validation epoch, embeddings standardised on training atoms
    assert 1 <= model.best_epoch_ <= model.n_epochs_ <= 25 and len(model.history_) == model.n_epochs_
    assert model.best_epoch_ >= model.min_epochs == 10
    best = min(h["val_loss"] for h in model.history_[model.min_epochs - 1:])
    assert model.history_[model.best_epoch_ - 1]["val_loss"] == best
    assert model.n_train_ + model.n_val_ == 240 and model.n_val_ == 24
    assert model.n_inputs_ == 79 + 2 * 64 and model.embedding_mean_.shape == (128,)


def test_plain_cgcnn_baseline(small):
    X, y = small
    model = NEGNNRegressor(layers=None, random_state=0, **FAST).fit(X, y)
    assert model.n_inputs_ == 79 and model.model_fingerprint_ is None and model.embedding_mean_ is None
    pred = model.predict(X)
    assert np.isfinite(pred).all()
    # the baseline never touches the pretrained model after fit: any model name predicts the same
    renamed = clone(model).set_params(model="no-such-model")
    renamed.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    np.testing.assert_array_equal(renamed.predict(X), pred)


def test_deterministic_clone_and_joblib_round_trip(small):
    X, y = small
    model = NEGNNRegressor(layers="0", random_state=3, **FAST).fit(X, y)
    pred = model.predict(X)
    again = clone(model).fit(X, y).predict(X)
    np.testing.assert_array_equal(again, pred)  # same random_state: same weights, same predictions
    other_seed = NEGNNRegressor(layers="0", random_state=4, **FAST).fit(X, y).predict(X)
    assert not np.array_equal(other_seed, pred)

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    assert buffer.tell() < 200_000  # the trained network only; the frozen encoder is reloaded by name
    buffer.seek(0)
    restored = joblib.load(buffer)
    assert "_net" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict(X), pred)
    assert restored.get_params() == model.get_params()

    restored.model_fingerprint_ = "0" * 64  # the installed weights differ from the ones the network was trained with
    with pytest.raises(ModelError, match="differs from the expected"):
        restored.predict(X)


def test_grid_search_and_cross_validation_over_layers(small):
    X, y = small
    search = GridSearchCV(NEGNNRegressor(random_state=0, **FAST), {"layers": [None, "0"]},
                          cv=KFold(2, shuffle=True, random_state=0), scoring="neg_mean_absolute_error")
    search.fit(X, y)
    assert search.best_params_["layers"] in (None, "0")
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    scores = cross_val_score(NEGNNRegressor(layers="01", random_state=0, **FAST), X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_bad_structures_are_named(small):
    X, y = small
    molecule = Molecule(["H", "H"], [[0, 0, 0], [0, 0, 0.74]])
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0, 0, 0.001]])
    bad = [*X[:10], molecule, *X[10:20], overlapping]
    y_bad = np.concatenate([y[:10], [1.0], y[10:20], [1.0]])
    with pytest.raises(FeaturizationError, match=r"entry 10: expected a pymatgen Structure, got Molecule") as info:
        NEGNNRegressor(random_state=0, **FAST).fit(bad, y_bad)
    assert info.value.position == 10

    with pytest.warns(FeaturizationWarning, match="2 of 22 inputs were skipped in fit"):
        model = NEGNNRegressor(random_state=0, ignore_errors=True, **FAST).fit(bad, y_bad)
    assert [i for i, _ in model.fit_errors_] == [10, 21] and "overlap" in model.fit_errors_[1][1]
    with pytest.warns(FeaturizationWarning, match="got NaN predictions"):
        pred = model.predict(bad)
    assert np.isnan(pred[[10, 21]]).all() and np.isfinite(np.delete(pred, [10, 21])).all()

    strict = clone(model).set_params(ignore_errors=False)
    strict.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    with pytest.raises(FeaturizationError, match="entry 5: sites 0 and 1 overlap"):
        strict.predict([*X[:5], overlapping])


def test_parameter_and_target_validation(small):
    X, y = small
    with pytest.raises(ValueError, match="'loss' parameter of NEGNNRegressor must be a str among"):
        NEGNNRegressor(loss="hinge").fit(X, y)
    with pytest.raises(ValueError, match="layers='9'"):
        NEGNNRegressor(layers="9", **FAST).fit(X, y)
    with pytest.raises(ValueError, match="40 structures but y has 39"):
        NEGNNRegressor(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        NEGNNRegressor(**FAST).fit(X, np.where(np.arange(40) == 3, np.nan, y))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NEGNNRegressor().predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fit without validation split trains max_epochs and warns nothing
        model = NEGNNRegressor(validation_fraction=0.0, random_state=0, **FAST).fit(X, y)
    assert model.n_epochs_ == FAST["max_epochs"] == model.best_epoch_ and model.n_val_ == 0
