"""Shared fixtures: built-in crystals, real Materials Project structures from ../shared (skipped if absent)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from pathlib import Path

import pytest

# One thread per native pool (OpenMP of torch and scikit-learn, OpenBLAS, MKL) in the test process and in every
# process it starts, set before numpy or torch is imported. The tests' arrays are small, and on a machine whose
# cores are busy two spinning OpenMP/BLAS pools in one process make a test many times slower (docs/negnn.md's
# example: 28 s with one thread, 250 s with two while other jobs ran). A value set by the caller is kept; the
# tests of parallel paths start processes (n_jobs, Dask workers, torchrun ranks) or set torch's threads
# themselves (test_matminer_api).
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SSL_FEATURIZER_SHARED", REPO.parent / "shared"))


def _shared_file(relative: str) -> Path:
    """Path of a file under ../shared/data, or skip the test with a clear message."""
    path = SHARED / "data" / relative
    if not path.exists():
        pytest.skip(f"shared data file {relative} not found under {SHARED / 'data'} "
                    "(set SSL_FEATURIZER_SHARED to the shared folder)")
    return path


@pytest.fixture(scope="session")
def shared_file():
    """Function mapping a path under ../shared/data to a Path, skipping the test if it is absent."""
    return _shared_file


@pytest.fixture(scope="session")
def crystals():
    from ssl_featurizer.examples import example_structures

    return example_structures()


@pytest.fixture(scope="session")
def mp_structures():
    """120 real MP structures spread over the corpus (every 1000th line from line 10,000)."""
    from pymatgen.core import Structure

    path = _shared_file("mp2025/structures.jsonl.gz")
    with gzip.open(path, "rt") as fh:
        rows = [json.loads(line) for line in itertools.islice(fh, 10_000, 130_000, 1000)]
    return [Structure(r["lattice"], r["species"], r["frac"]) for r in rows]
