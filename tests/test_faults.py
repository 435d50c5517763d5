"""Faults of a streaming run (docs/reliability.md, "Faults"): the real CLI killed with SIGKILL at a random
point and mid-write of a part file, a second writer on the same output, a damaged part file.

Every test ends with every input accounted for exactly once: each position is either a parquet row or
an ``_errors.csv`` row, never both, never twice, and the table equals an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from ssl_featurizer.stream import MANIFEST, featurize_to_parquet, read_errors, read_parquet

N_LINES = 600
BAD = {17: "{not json", 250: json.dumps({"id": "no-structure", "formula": "NaCl"})}
ARGS = ["--layers", "01", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, crystals):
    """A JSON-lines file of 600 records (built-in crystals, cycled and jittered), three of them bad."""
    root = tmp_path_factory.mktemp("faults")
    structures = list(crystals.values())
    isolated = Structure(Lattice.cubic(30.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    lines, rng = [], np.random.default_rng(0)
    for k in range(N_LINES):
        s = isolated if k == 400 else structures[k % len(structures)]
        frac = s.frac_coords + rng.uniform(-1e-3, 1e-3, s.frac_coords.shape)  # distinct rows: parts ~100 kB
        lines.append(BAD.get(k) or json.dumps({"id": f"s-{k}", "lattice": s.lattice.matrix.tolist(),
                                               "species": [e.symbol for e in s.species], "frac": frac.tolist()}))
    path = root / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    """An uninterrupted run (the reference)."""
    out = tmp_path_factory.mktemp("straight") / "out.parquet"
    featurize_to_parquet(corpus, out, layers="01", chunk_size=50, progress=False)
    return out


def cli(corpus, out, chunk_size, **kw):
    """Start the real CLI as a separate process."""
    return subprocess.Popen([sys.executable, "-m", "ssl_featurizer.cli", "featurize", str(corpus), "-o", str(out),
                             "--chunk-size", str(chunk_size), *ARGS], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


def n_parts(out) -> int:
    return sum(1 for p in out.glob("part-*.parquet")) if out.exists() else 0


def wait_for(condition, proc, what, timeout=120.0):
    """Poll (no fixed sleeps) until ``condition()``; fail if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the CLI ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def assert_exactly_once(out, straight):
    """Every input position once (a row or an error), and the same table and errors as the straight run."""
    table, errors = read_parquet(out), read_errors(out)
    positions = table["position"].tolist() + [e["position"] for e in errors]
    assert sorted(positions) == list(range(N_LINES))
    assert {e["position"] for e in errors} == {17, 250, 400}
    # other chunk sizes batch the structures differently: equal to ~1e-15, not necessarily bit for bit
    pd.testing.assert_frame_equal(table, read_parquet(straight), check_exact=False, rtol=0, atol=1e-12)
    assert errors == read_errors(straight)
    assert len(pd.read_parquet(out)) == N_LINES - 3  # reading the folder directly gives the same rows


# one seeded point (chunk size, parts done, fraction of the next part): each seed costs a CLI start and a
# rerun, and other seeds meet the same code (the states a kill can leave are each made deterministically by
# test_killed_mid_write_and_a_second_writer_is_refused here and test_stream.py's resume tests)
@pytest.mark.parametrize("seed", [0])
def test_sigkill_at_a_random_point_then_rerun(corpus, straight, tmp_path, seed):
    rng = np.random.default_rng(seed)
    out = tmp_path / "out.parquet"
    chunk = int(rng.choice([25, 50, 75]))
    target = int(rng.integers(1, N_LINES // chunk - 4))  # kill after this many parts plus a random fraction
    proc = cli(corpus, out, chunk)
    wait_for(lambda: n_parts(out) >= 1, proc, "the first part file")
    t0 = time.monotonic()
    wait_for(lambda: n_parts(out) >= target, proc, f"{target} part files")
    per_part = (time.monotonic() - t0) / max(target - 1, 1)
    time.sleep(rng.uniform(0, 0.9) * per_part)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # killed before its first commit, there is no manifest yet: nothing was completed
    manifest = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).exists() else {"n_read": 0, "parts": []}
    assert manifest["n_read"] < N_LINES  # really interrupted
    committed = {p["file"]: (out / p["file"]).stat().st_mtime_ns for p in manifest["parts"]}
    summary = featurize_to_parquet(corpus, out, layers="01", chunk_size=chunk, progress=False)  # the rerun
    assert summary.resumed_from == manifest["n_read"]
    assert {f: (out / f).stat().st_mtime_ns for f in committed} == committed  # resumed, not redone
    assert_exactly_once(out, straight)


def test_killed_mid_write_and_a_second_writer_is_refused(corpus, straight, tmp_path):
    """A part file's write is frozen half-way (its temporary name is a pipe the test reads slowly); then
    a second process on the same output is refused, the first is killed, and a rerun completes."""
    out = tmp_path / "out.parquet"
    proc = cli(corpus, out, 150)
    wait_for(lambda: n_parts(out) >= 1, proc, "the first part file")
    for k in range(2, 4):  # a part the run has not started writing yet
        pipe = out / f".part-{k:05d}.parquet.tmp"
        try:
            os.mkfifo(pipe)
        except FileExistsError:
            continue
        if n_parts(out) < k:
            break
        pipe.unlink()
    else:
        pytest.fail("the run outpaced the test")
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        head = b""
        deadline = time.monotonic() + 120
        while len(head) < 4 and time.monotonic() < deadline:
            head += _read(reader)
            time.sleep(0.002)
        assert head.startswith(b"PAR1")  # the writer is inside a parquet file (~160 kB), blocked on the full pipe
        second = cli(corpus, out, 150)
        _, err = second.communicate(timeout=300)
        assert second.returncode == 3 and err.count("\n") == 1 and "Traceback" not in err
        assert "being written by another process" in err and str(proc.pid) in err
        assert proc.poll() is None  # the first writer was not disturbed
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    finally:
        os.close(reader)
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["parts"]) == k and pipe.exists()  # died half-way through part k
    summary = featurize_to_parquet(corpus, out, layers="01", chunk_size=150, progress=False)
    assert summary.resumed_from == 150 * k and not pipe.exists()
    assert_exactly_once(out, straight)


def _read(fd) -> bytes:
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return b""
