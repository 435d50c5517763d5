"""Trust on every user path: no silent wrong descriptor, no code run from a data file, exactly-once output.

Each test meets a path the way a user does: ase structures without periodicity, threads through a real
``ThreadPoolExecutor``, a hostile JSON document with a real module file beside it, a resumed run compared row by
row with an uninterrupted one at every chunk offset, the CLI through a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import IStructure, Lattice, Molecule, Structure

from ssl_featurizer import (
    FeaturizationError,
    SSLSiteFeaturizer,
    SSLStructureFeaturizer,
    SuspiciousStructureWarning,
    load_model,
    ordered_approximant,
)
from ssl_featurizer.embed import embed_structures
from ssl_featurizer.examples import example_structures

CRYSTALS = example_structures()
SI, NACL, GAN = CRYSTALS["Si (diamond)"], CRYSTALS["NaCl (rock salt)"], CRYSTALS["GaN (wurtzite)"]


def _with_pbc(structure: Structure, pbc: tuple[bool, bool, bool]) -> Structure:
    return Structure(Lattice(structure.lattice.matrix, pbc=pbc), structure.species, structure.frac_coords)


# ---- silent wrong answers -------------------------------------------------------------------------------------
def test_non_periodic_structures_are_refused_not_featurized():
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = bulk("Si", "diamond", a=5.43)
    atoms.pbc = False  # e.g. a cluster cut from a crystal, converted as users do
    cluster = AseAtomsAdaptor.get_structure(atoms)
    slab = _with_pbc(SI, (True, True, False))
    for structure in (cluster, slab):
        with pytest.raises(FeaturizationError, match=r"not periodic in 3 dimensions \(pbc=\("):
            SSLStructureFeaturizer().fit_transform([structure])
        with pytest.raises(FeaturizationError, match="not periodic in 3 dimensions"):
            SSLSiteFeaturizer().featurize(structure, 0)
    with pytest.warns(UserWarning, match="1 of 2 inputs failed"):
        X = SSLStructureFeaturizer(ignore_errors=True).fit_transform([SI, slab])
    assert np.isfinite(X[0]).all() and np.isnan(X[1]).all()


def test_every_form_of_one_structure_gives_one_descriptor():
    """Structure, IStructure, its dict and its JSON text are the same input."""
    forms = [NACL, IStructure.from_sites(NACL), NACL.as_dict(), NACL.to_json(), NACL.to_json().encode()]
    X = SSLStructureFeaturizer(pooling=("mean", "std")).fit_transform(forms)
    np.testing.assert_allclose(X, np.repeat(X[:1], len(forms), axis=0), rtol=0, atol=1e-12)
    site = SSLSiteFeaturizer(layers="012")
    rows = [site.featurize(f, 1) for f in forms]
    np.testing.assert_allclose(rows, np.repeat([rows[0]], len(forms), axis=0), rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(-3, 3), min_size=9, max_size=9), st.sampled_from(["NaCl (rock salt)", "GaN (wurtzite)",
                                                                              "TiO2 (rutile)"]))
def test_an_oblique_basis_gives_the_descriptor_of_the_reduced_one(entries, name):
    """Any basis of the same lattice (an integer matrix of determinant ±1 applied to the cell) describes the same
    crystal; a very oblique one must not be refused or described differently."""
    structure = CRYSTALS[name]
    shear = np.eye(3, dtype=int) + np.triu(np.array(entries).reshape(3, 3), 1) * 3  # determinant 1
    skewed = Structure(Lattice(shear @ structure.lattice.matrix), structure.species, structure.cart_coords,
                       coords_are_cartesian=True, to_unit_cell=True)
    f = SSLStructureFeaturizer(layers="012", pooling=("mean", "std"))
    X = f.fit_transform([structure, skewed])
    np.testing.assert_allclose(X[1], X[0], rtol=0, atol=1e-9)


def test_the_oblique_nacl_cell_of_the_report_is_featurized():
    primitive = NACL.get_primitive_structure()
    matrix = np.array([[1, 40, 37], [0, 1, 29], [0, 0, 1]]) @ primitive.lattice.matrix
    skewed = Structure(Lattice(matrix), primitive.species, primitive.cart_coords, coords_are_cartesian=True,
                       to_unit_cell=True)
    X = SSLStructureFeaturizer().fit_transform([primitive, skewed])
    np.testing.assert_allclose(X[1], X[0], rtol=0, atol=1e-9)


@pytest.mark.parametrize("scale, cause", [(0.1, "nm"), (1 / 0.529177, "bohr")])
def test_unit_mistakes_are_flagged(scale, cause):
    wrong = Structure(Lattice(SI.lattice.matrix * scale), SI.species, SI.frac_coords)
    with pytest.warns(SuspiciousStructureWarning, match=f"1 of 2 inputs may be described wrongly: 1: .*{cause}"):
        X = SSLStructureFeaturizer().fit_transform([SI, wrong])
    assert np.isfinite(X).all()  # computed (a warning, not a refusal), but never silently
    with warnings.catch_warnings():
        warnings.simplefilter("error", SuspiciousStructureWarning)
        SSLStructureFeaturizer().fit_transform(list(CRYSTALS.values()))  # real crystals raise nothing


def test_elements_the_model_never_saw_are_flagged():
    card = load_model("default").card
    unseen = [el for el, n in card["element_counts"].items() if n == 0]
    assert "Am" in unseen and card["element_counts"]["O"] > 1000
    amo2 = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.38), ["Am", "O"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    with pytest.warns(SuspiciousStructureWarning, match=r"element\(s\) Am occur in no structure"):
        SSLStructureFeaturizer().fit_transform([amo2])
    with pytest.warns(SuspiciousStructureWarning, match="Am"):
        SSLSiteFeaturizer().featurize(amo2, 0)


@pytest.mark.parametrize("index", [True, 1.0, np.float64(0), "0", None])
def test_a_site_index_that_is_not_an_integer_is_refused(index):
    with pytest.raises(FeaturizationError, match="is not an integer"):
        SSLSiteFeaturizer().featurize(NACL, index)
    with pytest.warns(UserWarning, match="1 of 2 inputs failed"):
        X = SSLSiteFeaturizer(ignore_errors=True).fit_transform([(NACL, 0), (NACL, index)])
    assert np.isfinite(X[0]).all() and np.isnan(X[1]).all()


def test_the_disordered_hint_works_on_an_alloy_without_oxidation_states():
    alloy = Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    with pytest.raises(FeaturizationError, match=r"ssl_featurizer\.ordered_approximant\(structure\)") as refused:
        SSLStructureFeaturizer().fit_transform([alloy])
    assert "ordered_approximant" in str(refused.value)
    ordered = ordered_approximant(alloy)  # the hint, followed
    assert ordered.is_ordered and ordered.composition.reduced_formula == "FeNi" and len(ordered) == 2
    assert np.isfinite(SSLStructureFeaturizer().fit_transform([ordered])).all()
    oxide = Structure(Lattice.cubic(4.2), [{"Mg2+": 2 / 3, "Ni2+": 1 / 3}, "O2-"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    ordered = ordered_approximant(oxide)
    assert ordered.is_ordered and ordered.composition.reduced_formula == "Mg2NiO3"
    with pytest.raises(ValueError, match="more than max_atoms"):
        ordered_approximant(Structure(Lattice.cubic(3.6), [{"Fe": 0.37, "Ni": 0.63}], [[0, 0, 0]]),
                            max_denominator=100, max_atoms=50)


# ---- the site featurizer's cache ------------------------------------------------------------------------------
def _inputs() -> dict[str, object]:
    water = Molecule(["O", "H", "H"], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    return {"Si": SI, "Si without pbc": _with_pbc(SI, (False, False, False)), "NaCl IStructure":
            IStructure.from_sites(NACL), "NaCl": NACL, "GaN dict": GAN.as_dict(), "GaN JSON": GAN.to_json(),
            "Molecule": water, "a record": {"formula": "NaCl"},
            "disordered": Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])}


INPUTS = _inputs()


@pytest.fixture(scope="module")
def references():
    """Each input's all-layer site embeddings (or its failure), computed once and without any cache."""
    from ssl_featurizer.featurizers.inputs import decode_structures

    model = load_model("default")
    out = {}
    for name, value in INPUTS.items():
        emb = embed_structures(model, decode_structures([value]), tuple(range(model.n_layers + 1)))
        out[name] = (emb.atoms[0], emb.errors[0])
    return out


def _check(rows, errors, pairs, references, layers):
    model = load_model("default")
    cols = np.concatenate([np.arange(lay * model.width, (lay + 1) * model.width) for lay in layers])
    for row, error, (name, idx) in zip(rows, errors, pairs):
        atoms, reason = references[name]
        if reason is not None:
            assert error == reason and np.isnan(row).all(), (name, error)
        else:
            assert error is None, (name, error)
            np.testing.assert_allclose(row, atoms[idx, cols], rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(sorted(INPUTS)), min_size=1, max_size=4), min_size=1, max_size=6),
       st.sampled_from([0, 1, 2, 5]), st.integers(0, 3))
def test_site_cache_answers_as_an_uncached_reference(references, calls, cache_size, site):
    f = SSLSiteFeaturizer(layers="02", cache_size=cache_size).fit()
    for names in calls:
        pairs = [(name, site % 2) for name in names]
        rows, errors = f.featurize_with_errors([(INPUTS[name], idx) for name, idx in pairs])
        _check(rows, errors, pairs, references, (0, 2))


def test_site_featurizer_is_safe_in_a_thread_pool(references):
    f = SSLSiteFeaturizer(layers="01", cache_size=2, ignore_errors=True).fit()
    names = sorted(INPUTS)
    jobs = [[(names[(k + j) % len(names)], j % 2) for j in range(3)] for k in range(40)]

    def call(pairs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f.featurize_with_errors([(INPUTS[name], idx) for name, idx in pairs]), f.transform(
                [(INPUTS[name], idx) for name, idx in pairs])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(call, jobs))
    for pairs, ((rows, errors), transformed) in zip(jobs, results):
        _check(rows, errors, pairs, references, (0, 1))
        np.testing.assert_array_equal(rows, transformed)


# ---- data never runs code -------------------------------------------------------------------------------------
@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """A module beside the data whose import leaves a trace file, on sys.path as when run from that folder."""
    trace = tmp_path / "imported.txt"
    (tmp_path / "ssl_trust_payload.py").write_text(f"open({str(trace)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    doc = NACL.as_dict()
    doc["sites"][0]["properties"] = {"magmom": {"@module": "ssl_trust_payload", "@class": "Payload"},
                                     "tensor": {"@module": "numpy", "@class": "array", "dtype": "float64",
                                                "data": [1.0, 2.0]}}
    doc["properties"] = {"x": {"@module": "ssl_trust_payload", "@class": "Payload"}}
    yield doc, trace
    assert not trace.exists() and "ssl_trust_payload" not in sys.modules  # nothing ran


def test_hostile_json_runs_nothing_on_any_path(hostile, tmp_path):
    from ssl_featurizer.bench.tasks import read_structure_table
    from ssl_featurizer.readers import iter_records

    doc, _ = hostile
    X = SSLStructureFeaturizer().fit_transform([doc, json.dumps(doc), NACL])
    np.testing.assert_allclose(X[:2], X[[2, 2]], rtol=0, atol=1e-12)
    SSLSiteFeaturizer().featurize(json.dumps(doc), 0)
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "one.json").write_text(json.dumps(doc))
    (folder / "lines.jsonl").write_text(json.dumps({"id": "a", "structure": doc}) + "\n")
    frame = {"columns": ["id", "structure", "y"], "index": [0], "data": [["b", doc, 1.0]]}
    (folder / "frame.json").write_text(json.dumps(frame))
    records = list(iter_records(folder))
    assert [r.error for r in records] == [None, None, None] and all(len(r.structure) == len(NACL) for r in records)
    decoded = records[0].structure
    assert decoded.site_properties["tensor"][0] == doc["sites"][0]["properties"]["tensor"]  # kept as plain JSON
    table, failures = read_structure_table(folder / "frame.json")
    assert not failures and len(table["structure"].iloc[0]) == len(NACL)


def test_a_json_line_past_the_size_limit_is_not_read(tmp_path, monkeypatch):
    from ssl_featurizer import readers

    monkeypatch.setattr(readers, "MAX_JSON_CHARS", 4000)
    big = json.dumps({"id": "big", "pad": "x" * 10_000, **NACL.as_dict()})
    path = tmp_path / "x.jsonl"
    path.write_text(big + "\n" + json.dumps({"id": "ok", **NACL.as_dict()}) + "\n")
    records = list(readers.iter_records(path))
    assert "longer than the limit of 4,000 bytes" in records[0].error and records[1].error is None


# ---- exactly once ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy")
    CRYSTALS["Cu (fcc)"].to(filename=str(root / "01_cu.cif"))
    good = (root / "01_cu.cif").read_text()
    (root / "02a_bad.cif").write_text(good[: len(good) // 3])
    (root / "02b_empty.cif").write_text("")
    (root / "03_notes.txt").write_text("not a structure")
    (root / "04_three.json").write_text(json.dumps([NACL.as_dict(), {"formula": "x"}, GAN.as_dict()]))
    CRYSTALS["MgO (rock salt)"].to(filename=str(root / "05_mgo.cif"))
    lines = [json.dumps({"id": f"l{k}", **s.as_dict()}) for k, s in enumerate([SI, GAN])]
    (root / "06_lines.jsonl").write_text("\n".join([lines[0], "{broken", lines[1]]) + "\n")
    (root / "07_broken.json").write_text("[{")
    return root


def _result(out):
    from ssl_featurizer.stream import read_errors, read_parquet

    return read_parquet(out), read_errors(out)


def test_a_resumed_run_equals_an_uninterrupted_one_at_every_chunk_offset(messy_folder, tmp_path):
    """Stop after k records (every k), then rerun without the limit: the table and the errors file are the
    uninterrupted run's, row by row (ids, positions, features, reasons)."""
    from ssl_featurizer.stream import featurize_to_parquet

    whole = featurize_to_parquet(messy_folder, tmp_path / "whole.parquet", progress=False)
    table, errors = _result(whole.out)
    assert [e["id"] for e in errors].count("02a_bad.cif") == 1 and not any("#" in e["id"] for e in errors
                                                                          if e["id"].endswith(".cif"))
    assert sorted(table["position"].tolist() + [e["position"] for e in errors]) == list(range(whole.n_read))
    for chunk in (1, 3):
        for limit in range(1, whole.n_read):
            out = tmp_path / f"c{chunk}_l{limit}.parquet"
            featurize_to_parquet(messy_folder, out, chunk_size=chunk, limit=limit, progress=False)
            featurize_to_parquet(messy_folder, out, chunk_size=chunk, progress=False)
            resumed, resumed_errors = _result(out)
            assert resumed_errors == errors, (chunk, limit)
            assert resumed.index.tolist() == table.index.tolist()
            np.testing.assert_array_equal(resumed.to_numpy(), table.to_numpy())
            assert not (out / "_lock").exists()


def test_duplicate_ids_are_refused_with_the_first_position(tmp_path):
    from ssl_featurizer.stream import featurize_to_parquet

    path = tmp_path / "dup.jsonl"
    rows = [{"id": "a", **NACL.as_dict()}, {"id": "b", **SI.as_dict()}, {"id": "a", **GAN.as_dict()}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = featurize_to_parquet(path, tmp_path / "o.parquet", chunk_size=2, progress=False)
    table, errors = _result(summary.out)
    assert table.index.tolist() == ["a", "b"] and table.index.is_unique
    assert errors == [{"position": 2, "id": "a", "reason": errors[0]["reason"]}]
    assert "duplicate id 'a': the record at position 0 has the same id" in errors[0]["reason"]


def test_an_output_inside_its_input_folder_is_not_input_and_resumes(messy_folder, tmp_path):
    """The CLI as a user runs it: from the data folder, writing into it; then the same command again."""
    import shutil

    folder = tmp_path / "here"
    shutil.copytree(messy_folder, folder)
    command = [sys.executable, "-m", "ssl_featurizer.cli", "featurize", ".", "-o", "features.parquet", "--quiet",
               "--chunk-size", "4"]
    first = subprocess.run(command, check=False, cwd=folder, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    _, errors = _result(folder / "features.parquet")
    assert not any("features.parquet" in e["id"] for e in errors)
    assert not (folder / "features.parquet" / "_lock").exists()
    import os

    from ssl_featurizer.cli import main

    cwd = os.getcwd()
    try:
        os.chdir(folder)
        assert main(["featurize", ".", "-o", "features.parquet", "--quiet", "--chunk-size", "4"]) == 0
    finally:
        os.chdir(cwd)
    assert _result(folder / "features.parquet")[1] == errors


# ---- clear errors a user can act on ----------------------------------------------------------------------------
def test_cli_errors_a_user_can_act_on(messy_folder, tmp_path, capsys, monkeypatch):
    from ssl_featurizer.cli import build_parser, main
    from ssl_featurizer.models import registry
    from ssl_featurizer.models.catalog import DEFAULT_MODEL

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.cif").write_text("data_x\n")
    assert main(["featurize", str(bad), "-o", str(tmp_path / "b.parquet"), "--quiet"]) == 1
    assert "no structure was featurized (every input failed)" in capsys.readouterr().err

    def no_loading(*args, **kwargs):
        raise AssertionError("weights were loaded before the arguments were checked")

    monkeypatch.setattr(registry, "load_model", no_loading)
    for extra, fragment in ((["--layers", "10"], "ambiguous"), (["--layers", "0,6"], "out of range"),
                            (["--model", "cgcnn-ssl-mp2025@9"], "unknown model")):
        out = str(tmp_path / "o.parquet")
        assert main(["featurize", str(messy_folder), "-o", out, "--quiet", *extra]) == 2
        assert fragment in capsys.readouterr().err
    monkeypatch.undo()
    out = str(tmp_path / "o.parquet")
    assert main(["featurize", str(messy_folder), "-o", out, "--quiet", "--limit", "2"]) == 0
    capsys.readouterr()
    assert main(["featurize", str(messy_folder), "-o", out, "--quiet", "--layers", "012"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    help_text = build_parser()._subparsers._group_actions[0].choices["featurize"].format_help()
    assert DEFAULT_MODEL in " ".join(help_text.split()) and "(default: default)" not in help_text


def test_every_test_the_reliability_page_names_exists():
    import re

    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"`(test_\w+\.py)::(test_\w+)", page))
    assert len(named) > 20
    missing = [f"{f}::{t}" for f, t in sorted(named) if f"def {t}(" not in (root / "tests" / f).read_text()]
    assert not missing, missing
