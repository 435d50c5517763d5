"""Feature-cache reuse: subsets take their parent's cached rows; site layer sets are slices of all layers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ssl_featurizer.bench import Task
from ssl_featurizer.bench.descriptors import compute


def _site_task(crystals) -> Task:
    rows = [{"structure": s, "site": k, "target": float(s[k].specie.Z), "material": name}
            for name, s in crystals.items() for k in range(min(len(s), 3))]
    return Task.from_dataframe(pd.DataFrame(rows), "structure", "target", "toy_sites", site_col="site",
                               group_col="material")


def test_site_layer_sets_are_slices_of_the_cached_all_layer_features(crystals, tmp_path):
    task = _site_task(crystals)
    full, _ = compute("ssl_site:012345", task, tmp_path)
    sliced, _ = compute("ssl_site:02", task, tmp_path)
    direct, _ = compute("ssl_site:02", task)  # no cache: featurized on its own
    np.testing.assert_allclose(sliced, direct, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(sliced, np.hstack([full[:, :64], full[:, 128:192]]))
    assert len(list(tmp_path.glob("*.npz"))) == 1  # only the all-layer features are stored


def test_subset_reuses_parent_rows(crystals, tmp_path):
    task = _site_task(crystals)
    sub = task.subset(12, seed=2)
    assert sub.parent[0] is task and len(sub) >= 12
    parent_x, _ = compute("element_site+ssl_site:01", task, tmp_path)
    files = sorted(tmp_path.glob("*.npz"))
    sub_x, _ = compute("element_site+ssl_site:01", sub, tmp_path)
    assert sorted(tmp_path.glob("*.npz")) == files  # nothing recomputed for the subset
    np.testing.assert_array_equal(sub_x, parent_x[sub.parent[1]])
    fresh, _ = compute("element_site+ssl_site:01", sub)
    np.testing.assert_allclose(sub_x, fresh, rtol=1e-6, atol=1e-7)


def test_chunked_featurization_resumes_after_an_interruption(crystals, tmp_path, monkeypatch):
    """Slow descriptors are cached chunk by chunk: a killed run keeps its finished chunks; the result is unchanged."""
    import pytest

    from ssl_featurizer.bench import descriptors

    task = Task("toy", list(crystals.values())[:7], np.arange(7.0))
    whole, _ = compute("magpie", task)
    monkeypatch.setattr(descriptors, "CHUNK", 3)
    calls = []
    real = descriptors.HANDBUILT["magpie"]

    def flaky(structures):
        calls.append(len(structures))
        if len(calls) == 3:  # warm-up, chunk 0, then the process "dies" in chunk 1
            raise KeyboardInterrupt
        return real(structures)

    monkeypatch.setitem(descriptors.HANDBUILT, "magpie", flaky)
    with pytest.raises(KeyboardInterrupt):
        compute("magpie", task, tmp_path)
    assert len(list(tmp_path.glob("*.chunk*.npz"))) == 1
    calls.clear()
    monkeypatch.setitem(descriptors.HANDBUILT, "magpie", lambda s: (calls.append(len(s)), real(s))[1])
    x, _ = compute("magpie", task, tmp_path)
    assert calls == [1, 3, 1]  # warm-up, then only the chunks not on disk
    np.testing.assert_allclose(x, whole)
    assert not list(tmp_path.glob("*.chunk*.npz")) and len(list(tmp_path.glob("*.npz"))) == 1
