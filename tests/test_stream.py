"""Streaming featurization to parquet: readers, chunking, errors file, resumption, CLI."""

from __future__ import annotations

import csv
import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from ssl_featurizer.cli import main
from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
from ssl_featurizer.readers import detect_format, iter_records
from ssl_featurizer.stream import ERRORS, MANIFEST, StreamError, featurize_to_parquet, read_parquet


def reference(structures, **kw):
    """The in-process featurizer's rows (the streaming output must equal them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SSLStructureFeaturizer(ignore_errors=True, **kw).transform(list(structures))


def read_errors(out):
    with (out / ERRORS).open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, crystals):
    """A folder mixing CIF, POSCAR, JSON and extxyz files, one broken CIF and one unrelated file."""
    root = tmp_path_factory.mktemp("structures")
    (root / "sub").mkdir()
    expected = {}
    for k, (name, s) in enumerate(sorted(crystals.items())[:12]):
        stem = name.split(" ")[0]
        if k % 3 == 0:
            rel = f"{stem}.cif"
            s.to(filename=str(root / rel))
        elif k % 3 == 1:
            rel = f"sub/POSCAR_{stem}"
            s.to(filename=str(root / rel), fmt="poscar")
        else:
            rel = f"{stem}.json"
            (root / rel).write_text(json.dumps(s.as_dict()))
        expected[rel] = s
    (root / "zz_broken.cif").write_text("data_broken\n_cell_length_a 3.0\n")
    (root / "notes.txt").write_text("not a structure")
    return root, expected


def test_formats_are_detected_from_names():
    assert [detect_format(n) for n in ("a.cif", "b.mcif", "POSCAR_x", "x.vasp", "c.jsonl.gz", "d.json",
                                       "e.extxyz", "f.xyz")] == ["cif", "cif", "poscar", "poscar", "jsonl", "json",
                                                                  "extxyz", "extxyz"]
    with pytest.raises(ValueError, match="unknown structure file type"):
        detect_format("table.csv")


def test_folder_to_parquet_equals_in_process_featurizer(folder, tmp_path):
    root, expected = folder
    out = tmp_path / "features.parquet"
    summary = featurize_to_parquet(root, out, layers="012", pooling=("mean", "std"), chunk_size=5, progress=False)
    assert (summary.n_read, summary.n_ok, summary.n_failed, summary.n_skipped, summary.n_parts) == (14, 12, 2, 1, 3)
    table = pd.read_parquet(out)  # the folder reads as one table
    assert len(table) == 12 and table["position"].tolist() == sorted(table["position"])
    ids = table["id"].tolist()
    assert sorted(ids) == sorted(expected)
    features = table.drop(columns=["id", "position"])
    assert list(features.columns) == SSLStructureFeaturizer(layers="012", pooling=("mean", "std")).feature_labels()
    ref = reference([expected[i] for i in ids], layers="012", pooling=("mean", "std"))
    np.testing.assert_allclose(features.to_numpy(), ref, rtol=0, atol=1e-12)
    notes, broken = read_errors(out)  # the unrelated file is reported as skipped, not silently left out
    assert notes["id"] == "notes.txt" and notes["reason"].startswith("skipped: not a structure file")
    assert broken["id"] == "zz_broken.cif" and int(broken["position"]) == 13
    assert broken["reason"].startswith("could not parse CIF: ")
    assert read_parquet(out).index.tolist() == ids


def test_jsonl_corpus_and_as_dict_lines_with_failures(crystals, tmp_path, mp_structures):
    lines, good = [], []
    for k, s in enumerate(mp_structures[:20]):
        if k % 2:
            lines.append(json.dumps({"id": f"mp-{k}", "lattice": s.lattice.matrix.tolist(),
                                     "species": [e.symbol for e in s.species], "frac": s.frac_coords.tolist()}))
        else:
            lines.append(json.dumps({"id": f"mp-{k}", **s.as_dict()}))
        good.append((f"mp-{k}", s))
    isolated = Structure(Lattice.cubic(30.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    lines.insert(3, json.dumps({"id": "isolated", **isolated.as_dict()}))
    lines.insert(7, "{not json")
    lines.insert(9, json.dumps({"id": "no-structure", "formula": "NaCl"}))
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    out = tmp_path / "out.parquet"
    summary = featurize_to_parquet(path, out, chunk_size=8, progress=False)
    assert (summary.n_read, summary.n_ok, summary.n_failed) == (23, 20, 3)
    errors = {e["id"]: e["reason"] for e in read_errors(out)}
    assert "no neighbour" in errors["isolated"]
    assert "invalid JSON" in errors["corpus.jsonl.gz:8"]
    assert "expected a pymatgen Structure or the dict" in errors["no-structure"]
    table = read_parquet(out)
    assert table.index.tolist() == [i for i, _ in good]
    np.testing.assert_allclose(table.drop(columns="position").to_numpy(), reference([s for _, s in good]),
                               rtol=0, atol=1e-12)


def test_extxyz_frames(crystals, tmp_path):
    ase_io = pytest.importorskip("ase.io")
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [crystals["Si (diamond)"], crystals["NaCl (rock salt)"], crystals["Ti (hcp)"]]
    frames = [AseAtomsAdaptor.get_atoms(s) for s in structures]
    molecule = frames[0].copy()
    molecule.pbc = False
    ase_io.write(tmp_path / "frames.extxyz", [*frames[:2], molecule, frames[2]], format="extxyz")
    records = list(iter_records(tmp_path / "frames.extxyz"))
    assert [r.id for r in records] == [f"frames.extxyz#{k}" for k in range(4)]
    assert "not periodic" in records[2].error
    assert [r.cursor for r in iter_records(tmp_path / "frames.extxyz", start=(0, 3))] == [(0, 3)]
    out = tmp_path / "x.parquet"
    featurize_to_parquet(tmp_path / "frames.extxyz", out, progress=False)
    table = read_parquet(out)
    np.testing.assert_allclose(table.drop(columns="position").to_numpy(), reference(structures), rtol=0, atol=1e-12)


def test_interrupted_run_resumes_after_last_chunk(folder, tmp_path, monkeypatch):
    root, _ = folder
    fresh = tmp_path / "fresh.parquet"
    featurize_to_parquet(root, fresh, chunk_size=4, progress=False)
    out = tmp_path / "resumed.parquet"
    calls = {"n": 0}
    original = SSLStructureFeaturizer.featurize_with_errors

    def crash_on_third_chunk(self, structures, progress=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, structures, progress)

    monkeypatch.setattr(SSLStructureFeaturizer, "featurize_with_errors", crash_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        featurize_to_parquet(root, out, chunk_size=4, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["parts"]) == 2 and manifest["n_read"] == 8 and not manifest["exhausted"]
    (out / ".part-00002.parquet.tmp").write_bytes(b"half-written")  # what a kill during a write leaves
    (out / "part-00002.parquet").write_bytes(b"renamed, manifest not yet written")
    monkeypatch.setattr(SSLStructureFeaturizer, "featurize_with_errors", original)
    summary = featurize_to_parquet(root, out, chunk_size=4, progress=False)
    assert summary.resumed_from == 8 and summary.n_read == 14 and not list(out.glob(".*.tmp"))
    pd.testing.assert_frame_equal(read_parquet(out), read_parquet(fresh))
    assert read_errors(out) == read_errors(fresh)
    again = featurize_to_parquet(root, out, chunk_size=4, progress=False)  # already complete: nothing to do
    assert again.resumed_from == 14 and again.n_parts == summary.n_parts
    # a listed part damaged after the fact (e.g. a disk that lost the end of it) is detected and redone
    with (out / "part-00001.parquet").open("r+b") as fh:
        fh.truncate(100)
    repaired = featurize_to_parquet(root, out, chunk_size=4, progress=False)
    assert repaired.redone_parts == 3 and repaired.resumed_from == 4
    pd.testing.assert_frame_equal(read_parquet(out), read_parquet(fresh))
    assert read_errors(out) == read_errors(fresh)


def test_limit_then_continue_and_settings_guard(folder, tmp_path):
    root, _ = folder
    out = tmp_path / "o.parquet"
    assert featurize_to_parquet(root, out, chunk_size=4, limit=6, progress=False).n_read == 6
    assert featurize_to_parquet(root, out, chunk_size=4, progress=False).n_read == 14
    with pytest.raises(StreamError, match="layers"):
        featurize_to_parquet(root, out, layers="012", progress=False)
    assert featurize_to_parquet(root, out, layers="012", overwrite=True, progress=False).resumed_from == 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("user data")
    with pytest.raises(StreamError, match="not an ssl-featurizer output folder"):
        featurize_to_parquet(root, tmp_path / "other", overwrite=True, progress=False)
    assert (tmp_path / "other" / "keep.txt").exists()


def test_cli_featurize(folder, tmp_path, capsys):
    root, _ = folder
    out = tmp_path / "cli.parquet"
    assert main(["featurize", str(root), "-o", str(out), "--layers", "0", "--chunk-size", "6", "--limit", "10",
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "9 structures featurized, 0 failed, 1 non-structure files skipped" in err  # notes.txt
    assert "notes.txt: skipped" in err and f"listed with their reasons in {out / ERRORS}" in err
    table = pd.read_parquet(out)
    assert table.shape == (9, 2 + 64)


def test_progress_moves_per_batch_and_ends_once(crystals, tmp_path, capsys):
    structures = list(crystals.values())[:10]
    calls = []
    rows, errors = SSLStructureFeaturizer(batch_size=3).fit().featurize_with_errors(structures, progress=calls.append)
    assert calls == [3, 3, 3, 1] and rows.shape[0] == 10 and errors == [None] * 10
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(s.as_dict()) + "\n" for s in structures))
    featurize_to_parquet(path, tmp_path / "o.parquet", chunk_size=5, batch_size=2, progress=True)
    err = capsys.readouterr().err
    # (the redraws in between are rate-limited by tqdm; the per-batch updates are the callback above)
    assert "10/10" in err and sum("100%" in line for line in err.replace("\r", "\n").splitlines()) == 1  # the last state once
