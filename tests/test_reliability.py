"""The bad-input catalogue (docs/reliability.md): each input, its error, and rows-out == rows-in."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from pymatgen.core import Composition, Lattice, Molecule, Structure
from pymatgen.core.periodic_table import DummySpecies

from ssl_featurizer import FeaturizationError, FeaturizationWarning, SSLStructureFeaturizer
from ssl_featurizer.graph.crystal_graph import GraphConfig, StructureError, build_graph, pair_upper_bound

FE = Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cluster(n: int, spacing: float, cell: float) -> Structure:
    """n³ atoms on a cubic grid ``spacing`` Å apart (denser than any crystal) in an otherwise empty cubic cell."""
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing
    return Structure(Lattice.cubic(cell), ["Fe"] * len(grid), grid + 1.0, coords_are_cartesian=True)


CATALOGUE = {
    "disordered site": (lambda: Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]]),
                        "disordered"),
    "DummySpecies": (lambda: Structure(Lattice.cubic(3), [DummySpecies("X")], [[0, 0, 0]]),
                     "not a chemical element"),
    "element beyond the table": (lambda: Structure(Lattice.cubic(4), ["Md"], [[0, 0, 0]]),
                                 "beyond the element table"),
    "empty structure": (lambda: Structure(Lattice.cubic(3), [], []), "no sites"),
    "atom without neighbours": (lambda: Structure(Lattice.cubic(9.0), ["Ar"], [[0, 0, 0]]), "no neighbour"),
    "overlapping atoms": (lambda: Structure(Lattice.cubic(3), ["Fe", "Fe"], [[0, 0, 0], [1e-4, 0, 0]]),
                          "overlap"),
    "NaN coordinate": (lambda: Structure(Lattice.cubic(3), ["Fe"], [[np.nan, 0, 0]]), "NaN or inf"),
    "inf lattice": (lambda: Structure(Lattice([[np.inf, 0, 0], [0, 3, 0], [0, 0, 3]]), ["Fe"], [[0, 0, 0]]),
                    "NaN or inf"),
    "Molecule": (lambda: Molecule(["C", "O"], [[0, 0, 0], [0, 0, 1.13]]), "got Molecule"),
    "Composition": (lambda: Composition("NaCl"), "got Composition"),
    "string": (lambda: "NaCl", "got str"),
    "None": (lambda: None, "got NoneType"),
    "zero-volume lattice": (lambda: Structure(Lattice([[1, 0, 0], [0, 1, 0], [1, 1, 0]]), ["Fe"], [[0, 0, 0]]),
                            "zero volume"),
    "site far outside the cell": (lambda: Structure(Lattice.cubic(3), ["Fe", "Fe"], [[0, 0, 0], [1e15, .5, .5]]),
                                  "cells away"),
    "enormous neighbour shell": (lambda: cluster(20, 0.12, 50.0), "atom pairs"),
}


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_catalogue_strict_and_ignored(name):
    make, reason = CATALOGUE[name]
    bad = make()
    with pytest.raises(StructureError, match=reason):
        build_graph(bad)
    series = pd.Series([FE, bad, FE], index=["ok-1", "bad-entry", "ok-2"])
    f = SSLStructureFeaturizer(layers="01")
    with pytest.raises(FeaturizationError, match=f"'bad-entry' \\(position 1\\): .*{reason}"):
        f.transform(series)
    with pytest.warns(FeaturizationWarning, match=f"'bad-entry': .*{reason}"):
        X = SSLStructureFeaturizer(layers="01", ignore_errors=True).transform(series)
    assert X.shape == (3, 128) and np.isnan(X[1]).all() and np.isfinite(X[[0, 2]]).all()
    df = f.featurize_dataframe(pd.DataFrame({"structure": series}), "structure", ignore_errors=True,
                               return_errors=True, pbar=False)
    assert len(df) == 3 and reason.split()[0] in df["SSLStructureFeaturizer Exceptions"].iloc[1]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(n=st.integers(1, 12), lengths=st.lists(st.floats(1.0, 12.0), min_size=3, max_size=3),
       angles=st.lists(st.floats(60.0, 120.0), min_size=3, max_size=3), radius=st.floats(1.0, 8.0),
       seed=st.integers(0, 2**16))
def test_pair_bound_holds(n, lengths, angles, radius, seed):
    """The memory guard's pair count is an upper bound (the refusal never wrongly spares a search)."""
    from pymatgen.optimization.neighbors import find_points_in_spheres

    try:
        lattice = Lattice.from_parameters(*lengths, *angles)
    except ValueError:
        return
    if not lattice.volume > 0.5:
        return
    frac = np.random.default_rng(seed).uniform(-1, 2, (n, 3))
    coords = np.ascontiguousarray(frac @ lattice.matrix)
    centers, *_ = find_points_in_spheres(coords, coords, r=radius, pbc=np.ones(3, dtype=np.int64),
                                         lattice=np.ascontiguousarray(lattice.matrix), tol=1e-8)
    assert pair_upper_bound(frac, lattice.matrix, lattice.volume, radius) >= len(centers)


def test_tiny_lattice_is_featurized_within_bounds():
    """One atom in a 0.11 Å cube has ~10⁶ atoms within 8 Å; the density-based search radius keeps it small."""
    tiny = Structure(Lattice.cubic(0.11), ["Fe"], [[0, 0, 0]])
    assert build_graph(tiny).n_edges < 100
    assert np.isfinite(SSLStructureFeaturizer(layers="012").featurize(tiny)).all()


def test_single_atom_is_valid():
    x = SSLStructureFeaturizer(layers="012345").featurize(Structure(Lattice.cubic(2.5), ["Po"], [[0, 0, 0]]))
    assert np.isfinite(x).all()


def test_large_cell_within_documented_bound():
    big = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]) * (9, 9, 9)
    assert len(big) == 5832
    small = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    f = SSLStructureFeaturizer(layers="012")
    np.testing.assert_allclose(f.featurize(big), f.featurize(small), atol=1e-5)
    with pytest.raises(StructureError, match="more than max_atoms=5000"):
        build_graph(big, GraphConfig(max_atoms=5000))


def test_pretraining_killed_and_resumed_matches_uninterrupted(tmp_path, crystals):
    corpus = tmp_path / "c.jsonl.gz"
    with gzip.open(corpus, "wt") as fh:
        for k, s in enumerate(list(crystals.values()) * 2):
            fh.write(json.dumps({"id": f"k-{k}", "lattice": s.lattice.matrix.tolist(),
                                 "species": [e.symbol for e in s.species], "frac": s.frac_coords.tolist()}) + "\n")
    # the kill follows the first checkpoint (step 2) within one 5 ms poll; ~130 steps (seconds of training) remain
    # after it, so it lands mid-run however the machine schedules the two processes (and is checked below)
    common = ["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--epochs", "12",
              "--batch-size", "4", "--width", "8", "--depth", "2", "--val-fraction", "0.2",
              "--checkpoint-every", "2", "--warmup-steps", "2", "--threads", "1"]
    from ssl_featurizer.cli import main

    assert main([*common, "--out", str(tmp_path / "straight")]) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ssl_featurizer.cli", *common, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt.sha256").exists() and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["global_step"]
    assert torch.load(killed / "checkpoint.pt", weights_only=True)["global_step"] < final  # really interrupted
    assert main([*common, "--out", str(killed), "--resume"]) == 0
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert a["global_step"] == b["global_step"]
    for key, value in a["encoder"].items():
        assert torch.equal(value, b["encoder"][key]), key
