"""Invariances of the descriptors (hypothesis over random valid crystals, plus real MP structures)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from ssl_featurizer import SSLSiteFeaturizer, SSLStructureFeaturizer

ELEMENTS = ["H", "Li", "C", "O", "F", "Na", "Mg", "Al", "Si", "S", "Cl", "Ti", "Fe", "Cu", "Zn", "Sr", "Ba", "La", "U"]
ALL = SSLStructureFeaturizer(layers="012345", pooling=("mean", "std", "min", "max"))
ATOL = 1e-5


@st.composite
def crystals(draw):
    abc = [draw(st.floats(3.0, 7.0)) for _ in range(3)]
    angles = [draw(st.floats(75.0, 105.0)) for _ in range(3)]
    n = draw(st.integers(1, 5))
    frac = np.array([[draw(st.floats(0, 1, exclude_max=True)) for _ in range(3)] for _ in range(n)])
    species = [draw(st.sampled_from(ELEMENTS)) for _ in range(n)]
    s = Structure(Lattice.from_parameters(*abc, *angles), species, frac)
    dm = s.distance_matrix + np.eye(n) * 10
    if n > 1 and dm.min() < 1.2:
        frac = frac[:1]
        s = Structure(s.lattice, species[:1], frac)
    return s


def rotated(s, seed):
    r = Rotation.random(random_state=seed).as_matrix()
    return Structure(Lattice(s.lattice.matrix @ r.T), s.species, s.frac_coords)


common = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(crystals(), st.integers(0, 10_000))
def test_permutation_rotation_translation(s, seed):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(s))
    variants = [
        Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm]),
        rotated(s, seed),
        Structure(s.lattice, s.species, s.frac_coords + rng.random(3)),
    ]
    X = ALL.transform([s, *variants])
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X[1:], np.repeat(X[:1], 3, axis=0), atol=ATOL)


@common
@given(crystals())
def test_supercell_mean_sum_and_density_pooling(s):
    f = SSLStructureFeaturizer(layers="012345", pooling=("mean", "sum", "density"))
    x, xs = f.transform([s, s * (2, 2, 2)])
    mean, total, density = np.split(x, 3)
    np.testing.assert_allclose(np.split(xs, 3)[0], mean, atol=ATOL)  # mean: intensive
    np.testing.assert_allclose(np.split(xs, 3)[1], 8 * total, rtol=1e-4, atol=1e-3)  # sum: extensive
    np.testing.assert_allclose(np.split(xs, 3)[2], density, rtol=1e-4, atol=ATOL)  # sum per volume: intensive
    np.testing.assert_allclose(density, mean * len(s) / s.volume, rtol=1e-9, atol=1e-12)


@common
@given(st.lists(crystals(), min_size=2, max_size=6), st.integers(1, 4))
def test_batch_size_and_composition_do_not_matter(structures, batch_size):
    alone = np.vstack([ALL.transform([s]) for s in structures])
    together = SSLStructureFeaturizer(layers="012345", pooling=("mean", "std", "min", "max"),
                                      batch_size=batch_size).transform(structures[::-1])[::-1]
    np.testing.assert_allclose(together, alone, atol=ATOL)
    np.testing.assert_array_equal(ALL.transform(structures), ALL.transform(structures))  # deterministic


@common
@given(crystals(), st.integers(0, 10_000))
def test_site_embeddings_follow_their_atom(s, seed):
    perm = np.random.default_rng(seed).permutation(len(s))
    t = Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])
    f = SSLSiteFeaturizer(layers="012345")
    a = f.transform([(s, int(i)) for i in perm])
    b = f.transform([(t, i) for i in range(len(t))])
    np.testing.assert_allclose(a, b, atol=ATOL)


def test_real_mp_structures(mp_structures):
    """Real MP structures: finite, shaped as documented, invariant to 1e-5, n_jobs-independent."""
    X = ALL.transform(mp_structures)
    assert X.shape == (len(mp_structures), 4 * 6 * 64) and np.isfinite(X).all()
    sub = mp_structures[:40]
    rng = np.random.default_rng(0)
    perm = [Structure(s.lattice, [s.species[i] for i in p], s.frac_coords[p])
            for s, p in ((s, rng.permutation(len(s))) for s in sub)]
    np.testing.assert_allclose(ALL.transform(perm), X[:40], atol=ATOL)
    np.testing.assert_allclose(ALL.transform([rotated(s, k) for k, s in enumerate(sub)]), X[:40], atol=ATOL)
    mean = SSLStructureFeaturizer(layers="012345")
    small = [s for s in sub if len(s) <= 12][:10]
    np.testing.assert_allclose(mean.transform([s * (2, 2, 2) for s in small]), mean.transform(small), atol=ATOL)
    parallel = SSLStructureFeaturizer(layers="012345", pooling=("mean", "std", "min", "max"), n_jobs=2)
    np.testing.assert_allclose(parallel.transform(sub), X[:40], atol=1e-12)


def test_gridsearch_on_labeled_task(shared_file):
    """The README's GridSearchCV over layer sets runs on a few hundred labeled structures."""
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from ssl_featurizer.bench.tasks import read_structure_table

    df = read_structure_table(shared_file("tasks/kong2023_log_kvrh.json.gz"), select=lambda frame: np.arange(300))[0]
    pipe = Pipeline([("ssl", SSLStructureFeaturizer()), ("scale", StandardScaler()), ("krr", KernelRidge())])
    grid = GridSearchCV(pipe, {"ssl__layers": ["0", "01", "012"]}, cv=3, scoring="neg_mean_absolute_error")
    grid.fit(df["structure"], df["log10_kvrh"])
    assert grid.best_params_["ssl__layers"] in {"0", "01", "012"}
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
