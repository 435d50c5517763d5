"""Claims that must not drift: the default model named in README/docs, and every benchmark script runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "regenerate with: python studies/verdicts.py --docs-only"


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_pages_name_the_registry_default_and_every_shipped_model(page):
    from ssl_featurizer.models.registry import DEFAULT_MODEL, list_models

    text = (ROOT / page).read_text()
    assert f"The default model is `{DEFAULT_MODEL}`" in text, f"{page} does not name {DEFAULT_MODEL}; {REGENERATE}"
    for name in list_models():
        assert f"`{name}`" in text, f"{page} does not list the shipped model {name}; {REGENERATE}"


def test_no_page_calls_another_model_the_default():
    """Historical remarks ("…, the default model at the time") are allowed."""
    from ssl_featurizer.models.registry import DEFAULT_MODEL

    pattern = re.compile(r"(?:[Tt]he default(?: model)?(?: is|,)\s*`?\"?(cgcnn-ssl-[\w.-]+@[\d.]+))|"
                         r"(?:`?\"?(cgcnn-ssl-[\w.-]+@[\d.]+)\"?`?,? the default(?! model at the time))")
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in pattern.finditer(page.read_text()):
            named = match.group(1) or match.group(2)
            assert named == DEFAULT_MODEL, f"{page.name} calls {named} the default; the registry says {DEFAULT_MODEL}"


def test_every_benchmark_script_answers_help():
    """One interpreter imports and runs ``--help`` of every script in studies/ and studies/archive/ (a crash at
    import fails here)."""
    # modules the scripts import, no command lines of their own
    helpers = ("docs_blocks.py", "common.py", "project_tasks.py", "magnetism_analysis.py")
    studies = ROOT / "studies"
    scripts = sorted(p.relative_to(studies).as_posix() for p in [*studies.glob("*.py"), *studies.glob("archive/*.py")]
                     if p.name not in helpers)
    assert "archive/quality_gate.py" in scripts and "verdicts.py" in scripts
    code = f"""
import contextlib, io, runpy, sys
sys.path.insert(0, {str(studies)!r})
failed = []
for name in {scripts!r}:
    sys.argv = [name, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path({str(studies)!r} + "/" + name, run_name="__main__")
        failed.append(f"{{name}}: returned without printing help")
    except SystemExit as exc:
        if exc.code not in (0, None) or "usage:" not in out.getvalue():
            failed.append(f"{{name}}: exit {{exc.code}}: {{out.getvalue()[-300:]}}")
    except BaseException as exc:
        failed.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
print("\\n".join(failed))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", result.stdout
    shell = subprocess.run(["bash", "-n", str(ROOT / "studies" / "run_all.sh")], capture_output=True, text=True,
                           check=False)
    assert shell.returncode == 0, shell.stderr


def test_choose_default_writes_its_table(tmp_path):
    """The choice table is written with the chosen model in bold and each model's picks (a former crash)."""
    import pandas as pd

    sys.path.insert(0, str(ROOT / "studies"))
    try:
        from choose_default import decide, write_docs
    finally:
        sys.path.remove(str(ROOT / "studies"))
    results = pd.DataFrame([{"target": t, "model": m, "split": f"seed{k}", "spec": "ssl:012",
                             "test_mae": base * (1 + 0.01 * k) * (0.9 if m == "b" else 1.0)}
                            for t, base in (("e_form", 0.1), ("gap_pbe", 0.6)) for m in ("a", "b") for k in range(3)])
    chosen, table = decide(results, ["a", "b"])
    page = tmp_path / "page.md"
    page.write_text("before\n<!-- choice:start -->\nold\n<!-- choice:end -->\nafter\n")
    write_docs(table, results, chosen, 2000, page=page)
    text = page.read_text()
    assert chosen == "b" and "| **b** |" in text and "ssl:012×6" in text and "old" not in text


def _benchmarks_module(name: str):
    """A helper module of studies/ (the scripts import them by their bare name)."""
    import importlib

    sys.path.insert(0, str(ROOT / "studies"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "studies"))


def test_result_rows_resume_from_what_an_earlier_run_wrote(tmp_path):
    common = _benchmarks_module("common")
    path = tmp_path / "sub" / "rows.csv"
    first = common.ResultRows(path)
    assert first.rows == [] and first.done("task") == set()
    first.add([{"task": "a", "split": "seed0", "mae": 0.5}])
    first.add({"task": "b", "split": f"fold{k}", "mae": 0.25 * k} for k in range(2))  # any iterable of rows
    again = common.ResultRows(path)  # a later run reads what the stopped one finished
    assert again.done("task", "split") == {("a", "seed0"), ("b", "fold0"), ("b", "fold1")}
    assert again.frame().equals(first.frame())


def test_corpus_rows_become_structures_through_the_library_reader(tmp_path):
    import gzip
    import json

    from ssl_featurizer.examples import example_structures

    common = _benchmarks_module("common")
    structures = list(example_structures().values())[:3]
    rows = [{"id": f"x-{k}", "lattice": s.lattice.matrix.tolist(), "species": [str(e) for e in s.species],
             "frac": s.frac_coords.tolist()} for k, s in enumerate(structures)]
    corpus = tmp_path / "corpus.jsonl.gz"
    with gzip.open(corpus, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    read = list(common.corpus_rows(corpus))
    assert [r["id"] for r in read] == ["x-0", "x-1", "x-2"]
    assert [r["id"] for r in common.corpus_rows(corpus, every=2)] == ["x-0", "x-2"]
    for row, structure in zip(read, structures):
        assert common.corpus_structure(row) == structure
    with pytest.raises(ValueError, match="corpus row x-9: .*a structure needs .sites."):
        common.corpus_structure({"id": "x-9", "lattice": rows[0]["lattice"]})


def test_generated_blocks_round_trip_and_refuse_a_broken_marker(tmp_path):
    sys.path.insert(0, str(ROOT / "studies"))
    try:
        from docs_blocks import read_block, write_block
    finally:
        sys.path.remove(str(ROOT / "studies"))
    page = tmp_path / "page.md"
    page.write_text("# title\n<!-- t:start -->\nold\n<!-- t:end -->\nafter\n")
    write_block(page, "t", "| a |\n|---|\n| 1 |\n")
    assert read_block(page, "t") == "| a |\n|---|\n| 1 |"
    assert page.read_text().startswith("# title\n") and page.read_text().endswith("<!-- t:end -->\nafter\n")
    page.write_text("<!-- t:start -->\nno end marker\n")
    with pytest.raises(SystemExit, match="block 't'"):
        write_block(page, "t", "new")
    with pytest.raises(SystemExit, match="block 'u'"):
        read_block(page, "u")


def test_the_studies_readme_lists_every_study():
    listed = (ROOT / "studies" / "README.md").read_text()
    missing = [p.name for p in sorted((ROOT / "studies").glob("*.py")) if f"`{p.name}`" not in listed]
    assert not missing, f"studies/README.md does not list {missing}"
