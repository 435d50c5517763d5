"""Shared fixtures: built-in crystals, real Materials Project structures from ../shared (skipped if absent)."""

from __future__ import annotations

import gzip
import itertools
import json
import os
from pathlib import Path

import pytest

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
