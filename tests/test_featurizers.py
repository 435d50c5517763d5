"""SSLStructureFeaturizer / SSLSiteFeaturizer as matminer featurizers and scikit-learn transformers."""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from matminer.featurizers.base import MultipleFeaturizer
from matminer.featurizers.composition import ElementProperty
from matminer.featurizers.conversions import StructureToComposition
from matminer.featurizers.structure import DensityFeatures, SiteStatsFingerprint
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ssl_featurizer import FeaturizationError, SSLSiteFeaturizer, SSLStructureFeaturizer, list_models, load_model


@pytest.fixture(scope="module")
def frame(crystals):
    names = list(crystals)
    return pd.DataFrame({"structure": list(crystals.values()), "target": np.arange(len(names), dtype=float)},
                        index=pd.Index(names, name="crystal"))


def test_shapes_labels_and_layer_notation(crystals):
    model = load_model()
    s = crystals["NaCl (rock salt)"]
    for layers, n in [("0", 1), ("01", 2), ("012", 3), ((0, 2), 2), (3, 1)]:
        f = SSLStructureFeaturizer(layers=layers, pooling=("mean", "std"))
        vec = f.featurize(s)
        assert isinstance(vec, list) and len(vec) == 2 * n * model.width == len(f.feature_labels())
    assert SSLStructureFeaturizer(layers="01").feature_labels()[model.width] == "mean NE1_0"
    # "01" is the concatenation of "0" and "1"
    v01 = np.array(SSLStructureFeaturizer(layers="01").featurize(s))
    v0, v1 = (np.array(SSLStructureFeaturizer(layers=x).featurize(s)) for x in ("0", "1"))
    np.testing.assert_array_equal(v01, np.concatenate([v0, v1]))


@pytest.mark.parametrize("bad", [{"layers": "09"}, {"layers": "0a"}, {"layers": ""}, {"pooling": "median"},
                                 {"batch_size": 0}, {"model": "no-such-model"}])
def test_fit_validates_parameters(bad, crystals):
    with pytest.raises(ValueError):
        SSLStructureFeaturizer(**bad).fit(list(crystals.values()))


def test_unknown_model_lists_available():
    with pytest.raises(ValueError, match="unknown model 'nope'; available: default, ") as info:
        SSLStructureFeaturizer(model="nope").fit()
    assert all(name in str(info.value) for name in list_models())


@pytest.fixture
def two_torch_threads():
    """torch with a 2-thread pool, as on a user's machine (conftest.py gives the tests one thread)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_matminer_api(frame, two_torch_threads):
    # with two_torch_threads, the MultipleFeaturizer below forks after torch's thread pool ran (embed's fork guard)
    f = SSLStructureFeaturizer(layers="01")
    out = f.featurize_dataframe(frame, "structure", pbar=False)
    assert out.shape == (len(frame), 2 + len(f.feature_labels()))
    np.testing.assert_allclose(out[f.feature_labels()].to_numpy(), f.transform(frame["structure"]))
    assert any("2211.03563" in c and "Kong" in c for c in f.citations()) and f.implementors()
    # inside MultipleFeaturizer, next to a hand-built descriptor
    multi = MultipleFeaturizer([SSLStructureFeaturizer(layers="0"), DensityFeatures()])
    out = multi.featurize_dataframe(frame.iloc[:4], "structure", pbar=False)
    assert out.shape[1] == 2 + 64 + len(DensityFeatures().feature_labels())


def test_bad_rows_strict_and_ignored(frame):
    df = frame.iloc[:5].copy()
    df.loc[df.index[2], "structure"] = "not a structure"
    f = SSLStructureFeaturizer(layers="0")
    with pytest.raises(FeaturizationError, match=r"row .C \(diamond\). \(position 2\): expected a pymatgen"):
        f.featurize_dataframe(df, "structure", pbar=False)
    out = f.featurize_dataframe(df, "structure", ignore_errors=True, return_errors=True, pbar=False)
    assert len(out) == 5
    errors = out["SSLStructureFeaturizer Exceptions"]
    assert "expected a pymatgen Structure" in errors.iloc[2] and errors.drop(df.index[2]).isna().all()
    assert out[f.feature_labels()].iloc[2].isna().all() and out[f.feature_labels()].drop(df.index[2]).notna().all().all()
    # sklearn side: strict by default, NaN row + warning when asked
    with pytest.raises(FeaturizationError, match="diamond"):
        f.transform(df["structure"])
    with pytest.warns(UserWarning, match="1 of 5 inputs failed"):
        X = SSLStructureFeaturizer(layers="0", ignore_errors=True).transform(df["structure"])
    assert X.shape == (5, 64) and np.isnan(X[2]).all() and np.isfinite(np.delete(X, 2, 0)).all()


def test_sklearn_transformer_contract(frame):
    f = SSLStructureFeaturizer(layers="01", pooling=("mean", "max"))
    assert f.fit(frame["structure"]) is f and f.model_fingerprint_ == load_model().fingerprint
    X = f.transform(list(frame["structure"]))
    assert X.dtype == np.float64 and X.shape == (len(frame), 256)
    assert list(f.get_feature_names_out()) == f.feature_labels()
    tags = f.__sklearn_tags__()
    assert tags.requires_fit is False and tags.input_tags.two_d_array is False
    c = clone(f)
    assert c.get_params() == f.get_params() and not hasattr(c, "model_fingerprint_")
    f.fitted_model_, f.model_fingerprint_ = f.model, "0" * 64  # as if the installed weights changed since fit
    with pytest.raises(ValueError, match="differs from the expected"):
        f.transform(list(frame["structure"])[:1])
    f.fit()
    # set_output(pandas) keeps the index
    pdf = SSLStructureFeaturizer(layers="0").set_output(transform="pandas").fit_transform(frame[["structure"]])
    assert list(pdf.index) == list(frame.index) and pdf.columns[0] == "mean NE0_0"
    with pytest.raises(TypeError, match="one-column DataFrame"):
        f.transform(frame)


def test_pipeline_columntransformer_gridsearch(frame):
    pipe = Pipeline([("ssl", SSLStructureFeaturizer()), ("scale", StandardScaler()), ("krr", KernelRidge())])
    grid = GridSearchCV(pipe, {"ssl__layers": ["0", "01"], "ssl__pooling": [("mean",), ("mean", "std")]}, cv=3,
                        scoring="neg_mean_absolute_error")
    grid.fit(frame["structure"], frame["target"])
    assert set(grid.best_params_) == {"ssl__layers", "ssl__pooling"} and len(grid.cv_results_["params"]) == 4
    df = frame.assign(volume=[s.volume for s in frame["structure"]])
    ct = ColumnTransformer([("ssl", SSLStructureFeaturizer(layers="0"), ["structure"]),
                            ("num", StandardScaler(), ["volume"])]).set_output(transform="pandas")
    out = ct.fit_transform(df)
    assert out.shape == (len(df), 65) and "ssl__mean NE0_0" in out.columns and "num__volume" in out.columns
    model = Pipeline([("ct", ct), ("ridge", Ridge())]).fit(df, df["target"])
    assert np.isfinite(model.predict(df)).all()


def test_joblib_round_trip_in_fresh_process(tmp_path, crystals):
    f = SSLStructureFeaturizer(layers="012", pooling=("mean", "std")).fit(list(crystals.values()))
    path = tmp_path / "f.joblib"
    joblib.dump(f, path)
    assert path.stat().st_size < 20_000  # parameters only: the weights are reloaded by name + sha256
    expected = f.transform(list(crystals.values())[:3])
    np.save(tmp_path / "expected.npy", expected)
    code = (
        "import joblib, numpy as np\n"
        "from ssl_featurizer.examples import example_structures\n"
        f"f = joblib.load({str(path)!r})\n"
        "X = f.transform(list(example_structures().values())[:3])\n"
        f"np.testing.assert_allclose(X, np.load({str(tmp_path / 'expected.npy')!r}), atol=1e-6)\n"
        "print('ok', f.model_fingerprint_[:8])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_site_featurizer_caches_one_pass_per_structure(crystals, monkeypatch):
    import ssl_featurizer.featurizers.site as site_module

    calls = []
    real = site_module.embed_structures
    monkeypatch.setattr(site_module, "embed_structures", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    s = crystals["SrTiO3 (perovskite)"]
    f = SSLSiteFeaturizer(layers="01")
    rows = [f.featurize(s, i) for i in range(len(s))]
    assert calls == [1] and len(rows[0]) == 128
    # the site vectors are the atom vectors that the structure featurizer pools
    mean = np.array(SSLStructureFeaturizer(layers="01").featurize(s))
    np.testing.assert_allclose(np.mean(rows, axis=0), mean, atol=1e-5)
    ssf = SiteStatsFingerprint(SSLSiteFeaturizer(layers="0"), stats=("mean", "std_dev"))
    vec = np.array(ssf.featurize(s))
    np.testing.assert_allclose(vec[0::2], np.array(SSLStructureFeaturizer(layers="0").featurize(s)), atol=1e-5)
    with pytest.raises(FeaturizationError, match="out of range"):
        f.featurize(s, 5)


def test_site_featurizer_batch_and_transform(crystals):
    pairs = [(s, i) for s in list(crystals.values())[:4] for i in range(len(s))]
    f = SSLSiteFeaturizer(layers="1")
    X = f.fit_transform(pairs)
    assert X.shape == (len(pairs), 64)
    np.testing.assert_allclose(X[3], f.featurize(*pairs[3]), atol=1e-6)
    df = pd.DataFrame(pairs, columns=["structure", "site"])
    out = f.featurize_dataframe(df, ["structure", "site"], pbar=False)
    np.testing.assert_allclose(out[f.feature_labels()].to_numpy(), X, atol=1e-6)


def test_structure_to_composition_chain_with_magpie(frame):
    # the benchmark's typical concatenation: SSL + magpie on the same frame
    df = StructureToComposition().featurize_dataframe(frame.iloc[:3], "structure", pbar=False)
    df = ElementProperty.from_preset("magpie").featurize_dataframe(df, "composition", pbar=False)
    df = SSLStructureFeaturizer(layers="0").featurize_dataframe(df, "structure", pbar=False)
    assert df.filter(like="NE0").shape[1] == 64 and df.filter(like="MagpieData").shape[1] > 100


def test_density_pooling_needs_a_volume():
    from ssl_featurizer.pooling import parse_pooling, pool

    atoms = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(pool(atoms, parse_pooling(("mean", "density")), volume=2.0), [2, 3, 3, 4.5])
    for bad in (None, 0.0, float("nan")):
        with pytest.raises(ValueError, match="needs the cell volume"):
            pool(atoms, ("density",), volume=bad)


# ---- Structure.as_dict() dicts (DataFrames read from JSON) are accepted wherever a Structure is ----------------


def _json_dicts(structures):
    import json

    return [json.loads(json.dumps(s.as_dict())) for s in structures]  # as read back from a JSON file


def test_structure_dicts_give_the_same_rows_as_structures(frame):
    structures = list(frame["structure"])[:6]
    dicts = _json_dicts(structures)
    f = SSLStructureFeaturizer(layers="01", pooling=("mean", "density")).fit()
    expected = f.transform(structures)
    np.testing.assert_array_equal(f.transform(dicts), expected)
    np.testing.assert_array_equal(f.transform(pd.Series(dicts, index=frame.index[:6])), expected)
    np.testing.assert_array_equal(np.array(f.featurize(dicts[2])), expected[2])
    df = f.featurize_dataframe(pd.DataFrame({"structure": dicts}), "structure", pbar=False)
    np.testing.assert_array_equal(df[f.feature_labels()].to_numpy(), expected)
    from ssl_featurizer import build_graph

    a, b = build_graph(structures[0]), build_graph(dicts[0])
    np.testing.assert_array_equal(a.distances, b.distances)


def test_site_featurizer_and_site_stats_on_structure_dicts(crystals):
    from ssl_featurizer import as_structure

    structures = [crystals["SrTiO3 (perovskite)"], crystals["GaN (wurtzite)"]]
    dicts = _json_dicts(structures)
    f = SSLSiteFeaturizer(layers="01")
    pairs = [(s, i) for s in structures for i in range(len(s))]
    dict_pairs = [(d, i) for d in dicts for i in range(len(d["sites"]))]
    np.testing.assert_array_equal(f.fit_transform(dict_pairs), f.transform(pairs))
    np.testing.assert_array_equal(f.featurize(dicts[1], 3), f.featurize(structures[1], 3))
    # matminer's own featurizers need Structures: convert the column once with as_structure
    df = pd.DataFrame({"structure": dicts})
    df["structure"] = df["structure"].map(as_structure)
    ssf = SiteStatsFingerprint(SSLSiteFeaturizer(layers="0"), stats=("mean",))
    out = ssf.featurize_dataframe(df, "structure", pbar=False)
    site_rows = SSLSiteFeaturizer(layers="0").transform([(d, i) for d in dicts for i in range(len(d["sites"]))])
    np.testing.assert_allclose(out.iloc[0, 1:].to_numpy(float), site_rows[:5].mean(0), atol=1e-6)


def test_non_structures_and_damaged_dicts_are_refused_with_a_hint(crystals):
    from pymatgen.core import Molecule

    s = crystals["NaCl (rock salt)"]
    damaged = s.as_dict()
    damaged["lattice"] = {"matrix": "not a matrix"}
    water = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    f = SSLStructureFeaturizer(layers="0", ignore_errors=True)
    with pytest.warns(UserWarning, match="3 of 4 inputs failed"):
        X = f.fit_transform([s.as_dict(), water.as_dict(), {"formula": "NaCl"}, damaged])
    assert np.isfinite(X[0]).all() and np.isnan(X[1:]).all()
    reasons = SSLStructureFeaturizer(layers="0").fit().featurize_with_errors(
        [water.as_dict(), {"formula": "NaCl"}, damaged])[1]
    assert "got a Molecule dict" in reasons[0] and "Structure.as_dict()" in reasons[0]
    assert "got a dict with keys ['formula']" in reasons[1]
    assert reasons[2].startswith("could not read the Structure dict")
    with pytest.raises(FeaturizationError, match=r"entry 0: expected a pymatgen Structure or the dict"):
        SSLSiteFeaturizer(layers="0").featurize({"formula": "NaCl"}, 0)
