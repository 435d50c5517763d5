"""SimilarityIndex: exact search (against brute force), save/load, parquet and structure builds, bad input, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ssl_featurizer.similarity import SimilarityIndex, SimilarityIndexError, exact_kneighbors


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distance, sorted by (distance, position)."""
    d = np.sqrt(((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1))
    order = np.array([np.lexsort((np.arange(len(vectors)), row))[:k] for row in d])
    return np.take_along_axis(d, order, 1), order


@st.composite
def integer_problem(draw):
    """Small-integer matrices (exact arithmetic, many ties, duplicates), sometimes far from the origin."""
    n, d = draw(st.integers(1, 40)), draw(st.integers(1, 6))
    vectors = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-3, 3))).astype(float)
    queries = draw(hnp.arrays(np.int64, (draw(st.integers(1, 5)), d), elements=st.integers(-3, 3))).astype(float)
    offset = draw(st.sampled_from([0.0, 1000.0]))  # large norms: the float32 candidate bound must still hold
    return vectors + offset, queries + offset, draw(st.integers(1, n))


@settings(max_examples=80, deadline=None)
@given(integer_problem())
def test_exact_search_equals_brute_force_with_ties(problem):
    vectors, queries, k = problem
    dist, idx = exact_kneighbors(vectors, queries, k)
    want_dist, want_idx = brute_force(vectors, queries, k)
    np.testing.assert_array_equal(idx, want_idx)  # ties broken by position, as brute force does
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 300), st.integers(1, 40), st.floats(1e-3, 1e3))
def test_exact_search_equals_brute_force_on_random_floats(seed, n, d, scale):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, d)) * scale + rng.normal() * scale
    queries = np.vstack([rng.normal(size=(3, d)) * scale, vectors[:2]])  # two queries sit on indexed rows
    k = int(rng.integers(1, n + 1))
    dist, idx = exact_kneighbors(vectors, queries, k)
    want_dist, want_idx = brute_force(vectors, queries, k)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_array_equal(idx, want_idx)


def test_index_searches_its_stored_float32_vectors_exactly():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 16)) * 3 + 5
    index = SimilarityIndex.from_features(X, [f"m{i}" for i in range(500)])
    dist, pos = index.kneighbors(X[:20], k=7)
    want_dist, want_pos = brute_force(index.vectors.astype(float), index.transform(X[:20]), 7)
    np.testing.assert_array_equal(pos, want_pos)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12)
    assert (pos[:, 0] == np.arange(20)).all() and dist[:, 0].max() < 1e-5  # each row finds itself first


def test_save_load_round_trip_gives_equal_results(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 8))
    index = SimilarityIndex.from_features(X, [f"id-{i}" for i in range(300)], [f"F{i}" for i in range(300)])
    index.save(tmp_path / "idx")
    back = SimilarityIndex.load(tmp_path / "idx")
    queries = rng.normal(size=(10, 8))
    for a, b in zip(index.kneighbors(queries, 5), back.kneighbors(queries, 5)):
        np.testing.assert_array_equal(a, b)
    assert back.ids.tolist() == index.ids.tolist() and back.formulas.tolist() == index.formulas.tolist()
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["n_entries"] == 300 and meta["standardized"] and meta["featurizer"] is None
    with np.load(tmp_path / "idx" / "index.npz", allow_pickle=False) as data:  # readable without pickle
        assert data["vectors"].dtype == np.float32 and data["ids"].dtype.kind == "U"


def test_structures_build_query_and_round_trip(tmp_path, crystals):
    names = list(crystals)
    index = SimilarityIndex.build({n: crystals[n] for n in names[:20]}, layers="01", pooling="mean")
    assert len(index) == 20 and index.featurizer_settings["layers"] == [0, 1]
    queries = {n: crystals[n] for n in names[18:23]}
    table = index.query(queries, k=3)
    assert list(table.columns) == ["query", "query_formula", "rank", "id", "formula", "distance"]
    assert len(table) == 15 and (table.groupby("query").distance.diff().dropna() >= 0).all()
    top = table[table["rank"] == 1].set_index("query")
    for name in names[18:20]:  # indexed structures find themselves
        assert top.loc[name, "id"] == name and top.loc[name, "distance"] < 1e-4
    index.save(tmp_path / "idx")
    again = SimilarityIndex.load(tmp_path / "idx").query(queries, k=3)
    assert again.equals(table)


def test_from_parquet_reads_settings_and_formulas(tmp_path, crystals):
    from ssl_featurizer.stream import featurize_to_parquet

    source = tmp_path / "known.jsonl"
    chosen = list(crystals)[:8]
    source.write_text("".join(json.dumps({**crystals[n].as_dict(), "id": n}) + "\n" for n in chosen))
    featurize_to_parquet(source, tmp_path / "f.parquet", layers="012", pooling=("mean", "std"), progress=False)
    index = SimilarityIndex.from_parquet(tmp_path / "f.parquet")
    direct = SimilarityIndex.build({n: crystals[n] for n in chosen}, layers="012", pooling=("mean", "std"))
    assert index.ids.tolist() == chosen and index.featurizer_settings == direct.featurizer_settings
    assert index.formulas.tolist() == [crystals[n].composition.reduced_formula for n in chosen]
    np.testing.assert_allclose(index.vectors, direct.vectors, rtol=1e-5, atol=1e-5)


def test_bad_input_gives_clear_errors(tmp_path):
    rng = np.random.default_rng(3)
    index = SimilarityIndex.from_features(rng.normal(size=(10, 4)))
    with pytest.raises(ValueError, match="3 features, but the index holds 4"):
        index.kneighbors(np.zeros((1, 3)))
    rows = np.zeros((3, 4))
    rows[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at positions \[1\]\)"):
        index.kneighbors(rows)
    with pytest.raises(ValueError, match="k=11: must be an integer between 1 and the number of indexed entries"):
        index.kneighbors(np.zeros((1, 4)), k=11)
    with pytest.raises(ValueError, match="k=0"):
        index.kneighbors(np.zeros((1, 4)), k=0)
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at positions \[0\]\)"):
        SimilarityIndex.from_features(np.vstack([np.full(4, np.nan), np.ones(4)]))
    with pytest.raises(FileNotFoundError, match="no saved similarity index"):
        SimilarityIndex.load(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not a dataset written by"):
        SimilarityIndex.from_parquet(tmp_path)
    with pytest.raises(SimilarityIndexError, match="another descriptor"):
        index.query([], k=1)
    index.save(tmp_path / "idx")
    with np.load(tmp_path / "idx" / "index.npz") as data:
        arrays = dict(data)
    arrays["vectors"][0, 0] += 1  # an edited vector file
    np.savez(tmp_path / "idx" / "index.npz", **arrays)
    with pytest.raises(SimilarityIndexError, match="sha256 differs"):
        SimilarityIndex.load(tmp_path / "idx")


def test_cli_index_then_similar_in_a_subprocess(tmp_path, crystals):
    import subprocess
    import sys

    from ssl_featurizer.cli import main

    known = tmp_path / "known.jsonl"
    known.write_text("".join(json.dumps({**s.as_dict(), "id": n}) + "\n" for n, s in list(crystals.items())[:12]))
    assert main(["index", str(known), "-o", str(tmp_path / "idx"), "--layers", "01", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.json", "index.npz"]
    query = tmp_path / "q.cif"
    crystals["NaCl (rock salt)"].to(filename=str(query))
    run = subprocess.run([sys.executable, "-m", "ssl_featurizer.cli", "similar", str(query), "--index",
                          str(tmp_path / "idx"), "--k", "3", "--out", str(tmp_path / "n.csv")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "n.csv")
    assert table["rank"].tolist() == [1, 2, 3] and table["id"][0] == "NaCl (rock salt)"
    assert "NaCl (rock salt)" in run.stdout


def test_search_defaults_are_the_measured_recommendation():
    """The default layers/pooling of an index are the setting the retrieval study recommends (docs block)."""
    import inspect
    import re
    from pathlib import Path

    from ssl_featurizer.cli import build_parser
    from ssl_featurizer.similarity import SEARCH_LAYERS, SEARCH_POOLING, build_index

    page = (Path(__file__).resolve().parents[1] / "docs" / "similarity.md").read_text()
    block = page.split("<!-- retrieval:start -->")[1].split("<!-- retrieval:end -->")[0]
    best = re.search(r"Highest mean of precision@1, @5 and @10: \*\*(ssl:[^*]+)\*\*", block)
    assert best, "the retrieval block names no recommended setting"
    assert best[1] == f"ssl:{SEARCH_LAYERS}:{'-'.join(SEARCH_POOLING)}"
    signature = inspect.signature(SimilarityIndex.build).parameters
    assert (signature["layers"].default, tuple(signature["pooling"].default)) == (SEARCH_LAYERS, SEARCH_POOLING)
    assert inspect.signature(build_index).parameters["layers"].default == SEARCH_LAYERS
    index_command = build_parser().parse_args(["index", "in.jsonl", "-o", "out"])
    assert (index_command.layers, index_command.pooling) == (SEARCH_LAYERS, "-".join(SEARCH_POOLING))
