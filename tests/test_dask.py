"""Dask: bags and DataFrames featurized on a real 2-process LocalCluster equal the in-process featurizer."""

from __future__ import annotations

import json
import pickle
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("distributed", reason="the Dask tests need dask[distributed] (pip install 'ssl-featurizer[dask]')")

import dask
import dask.bag as db
import dask.dataframe as dd
import pandas as pd
from distributed import Client, LocalCluster
from pymatgen.core import Lattice, Structure

from ssl_featurizer.dask_featurize import ERRORS_COLUMN, featurize_bag, featurize_dataframe, register_model
from ssl_featurizer.featurizers.base import FeaturizationError
from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

# the workers cannot import this test module: ship its helper functions by value
__import__("cloudpickle").register_pickle_by_value(sys.modules[__name__])


def _count_model_loads() -> None:
    """Run on a worker: count calls of the registry's verified loader from now on."""
    from ssl_featurizer.models import registry

    registry._test_loads = 0
    original = registry._load_verified

    def counting(*args, **kwargs):
        registry._test_loads += 1
        return original(*args, **kwargs)

    registry._load_verified = counting


def _model_loads() -> int:
    from ssl_featurizer.models import registry

    return registry._test_loads


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with Client(cluster) as c:
        c.run(_count_model_loads)  # installed before any model exists on the workers
        yield c
    cluster.close()


def in_process(structures, featurizer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return featurizer.transform(list(structures))


def test_workers_load_the_model_once_and_tasks_stay_small(client, crystals):
    featurizer = SSLStructureFeaturizer(layers="012").fit()
    assert len(register_model(client, featurizer.model)) == 64
    assert set(client.run(_model_loads).values()) == {1}  # the plugin loaded it on each of the 2 workers
    structures = list(crystals.values())
    bag = db.from_sequence([s.to_json() for s in structures], npartitions=6)
    rows = np.stack(featurize_bag(bag, featurizer).compute())
    np.testing.assert_allclose(rows, in_process(structures, featurizer), rtol=0, atol=1e-12)
    rows = np.stack(featurize_bag(bag, featurizer).compute())  # a second computation
    assert set(client.run(_model_loads).values()) == {1}  # still one load per worker
    assert len(pickle.dumps(featurizer)) < 2000  # what each task carries: parameters, not 578 kB of weights


def test_bag_of_corpus_lines(client, mp_structures, tmp_path):
    structures = mp_structures[:40]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": f"x-{k}", "lattice": s.lattice.matrix.tolist(),
                                        "species": [e.symbol for e in s.species], "frac": s.frac_coords.tolist()})
                            + "\n" for k, s in enumerate(structures)))
    featurizer = SSLStructureFeaturizer(layers="01", pooling=("mean", "max"))
    bag = db.read_text(str(path), blocksize=4000)
    assert bag.npartitions > 2
    rows = np.stack(featurize_bag(bag, featurizer).compute())
    np.testing.assert_allclose(rows, in_process(structures, featurizer), rtol=0, atol=1e-12)


def test_dataframe_strict_and_ignored_errors(client, crystals):
    structures = list(crystals.values())[:9]
    isolated = Structure(Lattice.cubic(30.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    column = [s.to_json() for s in structures]
    column.insert(4, isolated.to_json())
    frame = pd.DataFrame({"structure": column, "y": np.arange(10.0)}, index=[f"row{k}" for k in range(10)])
    ddf = dd.from_pandas(frame, npartitions=3)
    with pytest.raises(FeaturizationError, match=r"row 'row4'.*no neighbour"):
        featurize_dataframe(ddf, SSLStructureFeaturizer()).compute()
    lenient = SSLStructureFeaturizer(layers="01", ignore_errors=True)
    result = featurize_dataframe(ddf, lenient, return_errors=True).compute()
    assert result.index.tolist() == frame.index.tolist() and result["y"].tolist() == frame["y"].tolist()
    labels = lenient.feature_labels()
    assert result.loc["row4", labels].isna().all() and "no neighbour" in result.loc["row4", ERRORS_COLUMN]
    good = result.drop(index="row4")
    assert good[ERRORS_COLUMN].isna().all()
    np.testing.assert_allclose(good[labels].to_numpy(), in_process(structures, lenient), rtol=0, atol=1e-12)


def test_structure_objects_in_a_dataframe(client, crystals):
    structures = list(crystals.values())[:6]
    frame = pd.DataFrame({"structure": structures})
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dd.from_pandas(frame, npartitions=2)
        result = featurize_dataframe(ddf, SSLStructureFeaturizer()).compute()
    labels = SSLStructureFeaturizer().feature_labels()
    np.testing.assert_allclose(result[labels].to_numpy(), in_process(structures, SSLStructureFeaturizer()),
                               rtol=0, atol=1e-12)
    with dask.config.set({"dataframe.convert-string": True}):  # Dask turns the objects into str(structure)
        ddf = dd.from_pandas(frame, npartitions=2)
        with pytest.raises(FeaturizationError, match="convert-string"):
            featurize_dataframe(ddf, SSLStructureFeaturizer()).compute()


def _pid() -> int:
    import os

    return os.getpid()


def _starts(client) -> list[dict]:
    from ssl_featurizer.dask_featurize import EVENT_TOPIC

    return [msg for _, msg in client.get_events(EVENT_TOPIC) if msg.get("action") == "partition-start"]


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(client, crystals, caplog):
    """SIGKILL one of two worker processes mid-run: every row once, equal to the in-process result, retries said."""
    import os
    import signal
    import time

    from ssl_featurizer.dask_featurize import retried_partitions

    rng = np.random.default_rng(0)
    base = list(crystals.values())
    structures = []
    for k in range(600):  # distinct (jittered) structures, so a lost or doubled row would show
        s = base[k % len(base)].copy()
        structures.append(Structure(s.lattice, s.species, s.frac_coords + rng.uniform(-1e-3, 1e-3, (len(s), 3))))
    featurizer = SSLStructureFeaturizer(layers="01", ignore_errors=True).fit()
    expected = in_process(structures, featurizer)
    # the module's 2-process cluster (its nannies restart the killed worker for the tests after this one)
    register_model(client, featurizer.model)
    pids = client.run(_pid)
    already = len(_starts(client))
    bag = db.from_sequence([s.to_json() for s in structures], npartitions=24)
    future = client.compute(featurize_bag(bag, featurizer))
    deadline = time.monotonic() + 120
    while len(_starts(client)) < already + 4 and not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not future.done(), "the run ended before a worker could be killed"
    victim = _starts(client)[-1]["worker"]  # busy now, and holding the results of partitions it finished
    os.kill(pids[victim], signal.SIGKILL)
    rows = np.stack(future.result(timeout=300))
    with caplog.at_level("WARNING", logger="ssl_featurizer.dask_featurize"):
        retried = retried_partitions(client)
    assert rows.shape == expected.shape  # nothing lost, nothing doubled ...
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-12)  # ... and each row in its place
    assert retried and all(n >= 2 for n in retried.values())
    assert f"was started {max(retried.values())} times" in caplog.text


def test_a_worker_with_other_weights_is_refused(client, crystals, tmp_path):
    """Workers check the weights' sha256 against the client's: changed or missing weights are refused."""
    import shutil

    from ssl_featurizer.models.registry import ModelError, list_models, load_model, resolve_model

    (first, _), (second, _) = (resolve_model(m) for m in list_models()[:2])
    model_dir = tmp_path / "model"
    shutil.copytree(resolve_model(first)[1], model_dir)
    featurizer = SSLStructureFeaturizer(model=str(model_dir)).fit()  # the client pins these weights' sha256
    assert featurizer.model_fingerprint_ == load_model(first).fingerprint
    shutil.rmtree(model_dir)
    shutil.copytree(resolve_model(second)[1], model_dir)  # the workers now find other (valid) weights there
    bag = db.from_sequence([s.to_json() for s in list(crystals.values())[:4]], npartitions=2)
    with pytest.raises(ModelError, match="differs from the expected"):
        featurize_bag(bag, featurizer).compute()
    shutil.rmtree(model_dir)  # and workers without the weights at all
    with pytest.raises(ModelError):
        featurize_bag(bag, featurizer).compute()
