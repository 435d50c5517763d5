"""Malformed structure files (docs/reliability.md, "Faults"): the readers never crash or hang, each bad file
becomes error rows whose reason names the format and what was wrong, good files next to them are featurized.
"""

from __future__ import annotations

import io
import json
import re
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
from ssl_featurizer.readers import FORMAT_NAMES, iter_records
from ssl_featurizer.stream import featurize_to_parquet, read_errors, read_parquet

NACL = Structure(Lattice.cubic(5.64), ["Na", "Na", "Na", "Na", "Cl", "Cl", "Cl", "Cl"],
                 [[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0], [.5, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5]])
NAMES = {"cif": "x.cif", "poscar": "x.vasp", "json": "x.json", "jsonl": "x.jsonl", "extxyz": "x.extxyz"}


def good_texts() -> dict[str, str]:
    """One valid file of each format holding NACL."""
    texts = {"cif": NACL.to(fmt="cif"), "poscar": NACL.to(fmt="poscar"), "json": json.dumps(NACL.as_dict()),
             "jsonl": "".join(json.dumps({"lattice": NACL.lattice.matrix.tolist(),
                                          "species": [e.symbol for e in NACL.species],
                                          "frac": NACL.frac_coords.tolist()}) + "\n" for k in range(2))}
    try:
        import ase.io
        from pymatgen.io.ase import AseAtomsAdaptor
    except ImportError:
        return texts
    buffer = io.StringIO()
    ase.io.write(buffer, AseAtomsAdaptor.get_atoms(NACL), format="extxyz")
    texts["extxyz"] = buffer.getvalue()
    return texts


GOOD = good_texts()
HOSTILE_TOKENS = ["abc", "1e999", "9" * 400, "nan", "-inf", "1e15", "0", "-1", "", "\x00", "é", "[", "{"]
NUMBER = re.compile(rb"-?\d+\.?\d*(?:[eE][-+]?\d+)?")


@st.composite
def malformed(draw, fmt: str) -> bytes:
    """A valid file of ``fmt`` damaged in one or two ways (or replaced by garbage)."""
    data = GOOD[fmt].encode()
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["truncate", "drop line", "repeat line", "token", "garbage", "not utf-8",
                                     "empty", "random bytes"]))
        lines = data.split(b"\n")
        if kind == "truncate":
            data = data[:draw(st.integers(0, max(len(data) - 1, 0)))]
        elif kind in ("drop line", "repeat line") and lines:
            k = draw(st.integers(0, len(lines) - 1))
            lines[k:k + 1] = [] if kind == "drop line" else [lines[k], lines[k]]
            data = b"\n".join(lines)
        elif kind == "token":
            numbers = list(NUMBER.finditer(data))
            if numbers:
                m = numbers[draw(st.integers(0, len(numbers) - 1))]
                data = data[:m.start()] + draw(st.sampled_from(HOSTILE_TOKENS)).encode() + data[m.end():]
        elif kind == "garbage":
            k = draw(st.integers(0, len(data)))
            data = data[:k] + draw(st.binary(min_size=1, max_size=40)) + data[k:]
        elif kind == "not utf-8" and data:
            k = draw(st.integers(0, len(data) - 1))
            data = data[:k] + b"\xff\xfe" + data[k + 1:]
        elif kind == "empty":
            data = b""
        elif kind == "random bytes":
            data = draw(st.binary(max_size=300))
    return data


def reference(structures):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SSLStructureFeaturizer(ignore_errors=True).transform(structures)


def names_its_format(reason: str) -> bool:
    """A reader's reason names the format; a featurizer's reason (the file parsed) names the structure problem."""
    if reason.startswith(("could not parse", "could not read")):
        return any(name in reason for name in FORMAT_NAMES.values())
    return not reason.startswith("could not") and "Traceback" not in reason


# no shrinking phase: a failure is reported as drawn, within the time budget
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(bad=st.fixed_dictionaries({fmt: malformed(fmt) for fmt in GOOD}))
def test_malformed_files_next_to_good_ones(tmp_path_factory, bad):
    root = tmp_path_factory.mktemp("fuzz")
    for fmt, data in bad.items():
        (root / f"bad_{NAMES[fmt]}").write_bytes(data)
        (root / f"good_{NAMES[fmt]}").write_text(GOOD[fmt])
    t0 = time.perf_counter()
    summary = featurize_to_parquet(root, root.parent / (root.name + ".parquet"), progress=False)
    assert time.perf_counter() - t0 < 30
    out = summary.out
    table, errors = read_parquet(out), read_errors(out)
    positions = sorted(table["position"].tolist() + [e["position"] for e in errors])
    assert positions == list(range(summary.n_read))  # every record exactly once
    for e in errors:
        assert e["id"].startswith("bad_") and "\n" not in e["reason"] and names_its_format(e["reason"]), e
    good = table[table.index.str.startswith("good_")]
    assert len(good) == len(GOOD) + 1  # every good file featurized (the JSON-lines one holds two structures)
    np.testing.assert_allclose(good.drop(columns="position").to_numpy(), reference([NACL] * len(good)),
                               rtol=0, atol=1e-12)
    seen = {re.split("[#:]", i)[0] for i in [*table.index, *(e["id"] for e in errors)]}
    assert {f"bad_{NAMES[fmt]}" for fmt in bad} <= seen  # every bad file is accounted for


CASES = {
    "truncated CIF": ("x.cif", GOOD["cif"][:420].encode(), "could not parse CIF: "),
    "CIF without atoms": ("x.cif", b"data_x\n_cell_length_a 3.0\n", "could not parse CIF: "),
    "binary CIF": ("x.cif", bytes(range(256)), "could not parse CIF: not UTF-8 text"),
    "empty POSCAR": ("POSCAR", b"", "could not parse POSCAR: "),
    "POSCAR with a wrong count": ("POSCAR", GOOD["poscar"].replace("\n4 4\n", "\n4 9\n").encode(),
                                  "could not parse POSCAR: "),
    "empty JSON": ("x.json", b"", "could not parse JSON: "),
    "JSON list without structures": ("x.json", b"[]", "could not parse JSON: the file holds no structure"),
    "JSON-lines line not UTF-8": ("x.jsonl", b"\xff\xfe{}\n", "could not parse JSON-lines line 1: not UTF-8"),
    "JSON-lines with a wrong object": ("x.jsonl", b'{"lattice": 5}\n', ("could not parse JSON-lines line 1: could "
                                       "not build a structure")),
    "empty JSON-lines": ("x.jsonl", b"", "could not parse JSON-lines: the file holds no structure"),
    "empty extxyz": ("x.extxyz", b"", "could not parse extxyz: the file holds no structure"),
    "extxyz with a wrong count": ("x.extxyz", (b'2\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3\n'
                                  b"Fe 0 0 0\n"), "could not parse extxyz: "),
    "not a structure file": ("notes.txt", b"hello", "skipped: not a structure file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_file_is_one_record_naming_the_format(case, tmp_path):
    name, data, reason = CASES[case]
    if name.endswith("extxyz"):
        pytest.importorskip("ase")
    (tmp_path / name).write_bytes(data)
    records = list(iter_records(tmp_path))
    assert len(records) == 1 and records[0].structure is None and records[0].id in (name, f"{name}:1")
    assert records[0].error.startswith(reason) and "\n" not in records[0].error
    assert records[0].skipped == (case == "not a structure file")


def test_reading_one_file_is_bounded_in_time(tmp_path, monkeypatch):
    """A reader stuck on a file (here: made to sleep) is stopped at the time limit; the next file is read."""
    from ssl_featurizer import readers

    original = readers._READERS["poscar"]

    def stuck(path, name, skip):
        if "stuck" in name:
            time.sleep(30)
        yield from original(path, name, skip)

    monkeypatch.setitem(readers._READERS, "poscar", stuck)
    (tmp_path / "POSCAR_a_stuck").write_text(GOOD["poscar"])
    (tmp_path / "POSCAR_b").write_text(GOOD["poscar"])
    t0 = time.perf_counter()
    first, second = iter_records(tmp_path, time_limit=0.5)
    assert time.perf_counter() - t0 < 10
    assert first.error == "could not parse POSCAR: reading took longer than the 0.5 s time limit"
    assert second.error is None and len(second.structure) == len(NACL)
