"""Command line: the README's demo, the model list, and the README ↔ CI contract."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ssl_featurizer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_models_command(capsys):
    assert main(["models"]) == 0
    from ssl_featurizer.models.registry import DEFAULT_MODEL

    out = capsys.readouterr().out
    assert f"{DEFAULT_MODEL}  (default)" in out and out.count("(default)") == 1
    assert "cgcnn-ssl-mp2025@1.0:" in out  # earlier versions stay loadable by name


def test_ci_runs_the_readme_test_command():
    readme, ci = ROOT / "README.md", ROOT / ".ci" / "run"
    if not ci.exists():
        pytest.skip("not a source checkout")
    blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    test_command = next(b.strip() for b in blocks if "pytest" in b)
    assert ci.read_text().strip().splitlines()[-1] == test_command


# ---- manners: help, defaults, version, one-line user errors, Ctrl-C, the featurize summary ------------------


def _subparsers(parser):
    import argparse

    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_help_lists_every_command_and_every_option_has_help_and_default():
    from ssl_featurizer.cli import build_parser

    parser = build_parser()
    text = parser.format_help()
    listed = re.findall(r"^  (\w+)\s{2,}\S", text.split("commands:")[1].split("\n\n")[0], flags=re.MULTILINE)
    assert sorted(listed) == sorted(_subparsers(parser)) and "``" not in text and ":class:" not in text
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            if action.dest in ("help",) or not action.option_strings:
                continue
            assert action.help, f"{name} {action.option_strings[0]} has no help"
            shown = sub._get_formatter()._get_help_string(action)
            stated = action.default in (None, False, "==SUPPRESS==")  # flags; None is explained below
            assert "default" in shown or action.required or stated, (name, action.option_strings, shown)
            if action.default is None and not action.required:  # None must be explained in words
                assert "default" in action.help, f"{name} {action.option_strings[0]}: what does None mean?"


def test_one_default_layer_string_everywhere():
    import inspect

    from ssl_featurizer.cli import build_parser
    from ssl_featurizer.demo import run_demo
    from ssl_featurizer.featurizers import DEFAULT_LAYERS
    from ssl_featurizer.featurizers.site import SSLSiteFeaturizer
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer
    from ssl_featurizer.stream import featurize_to_parquet

    subs = _subparsers(build_parser())
    defaults = {
        "structure featurizer": inspect.signature(SSLStructureFeaturizer).parameters["layers"].default,
        "site featurizer": inspect.signature(SSLSiteFeaturizer).parameters["layers"].default,
        "featurize_to_parquet": inspect.signature(featurize_to_parquet).parameters["layers"].default,
        "run_demo": inspect.signature(run_demo).parameters["layers"].default,
        "cli demo": subs["demo"].get_default("layers"),
        "cli featurize": subs["featurize"].get_default("layers"),
    }
    assert set(defaults.values()) == {DEFAULT_LAYERS}, defaults
    assert f"(default: {DEFAULT_LAYERS})" in " ".join(subs["featurize"].format_help().split())


def test_version(capsys):
    import ssl_featurizer

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"ssl-featurizer {ssl_featurizer.__version__}"


@pytest.fixture
def cif_folder(tmp_path, crystals):
    """Two good CIFs, one truncated CIF and one non-structure file."""
    root = tmp_path / "in"
    root.mkdir()
    for name in ("NaCl (rock salt)", "Cu (fcc)"):
        crystals[name].to(filename=str(root / f"{name.split()[0]}.cif"))
    good = (root / "NaCl.cif").read_text()
    (root / "truncated.cif").write_text(good[: len(good) // 3])
    (root / "readme.txt").write_text("not a structure")
    return root


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and lines[0].startswith("ssl-featurizer "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, err)
    return lines[0]


@pytest.mark.parametrize("extra, fragment", [
    (["--layers", "9"], "layers='9'"),
    (["--layers", "x1"], "layers='x1'"),
    (["--pooling", "median"], "pooling="),
    (["--model", "no-such-model"], "no-such-model"),
    (["--chunk-size", "0"], "chunk_size=0"),
])
def test_featurize_user_errors_print_one_line(cif_folder, tmp_path, capsys, extra, fragment):
    assert main(["featurize", str(cif_folder), "-o", str(tmp_path / "o.parquet"), "--quiet", *extra]) == 2
    _one_line_error(capsys, "ssl-featurizer featurize: error:", fragment, "--debug")


def test_missing_input_and_other_settings_print_one_line_and_debug_raises(cif_folder, tmp_path, capsys):
    out = str(tmp_path / "o.parquet")
    assert main(["featurize", str(tmp_path / "missing"), "-o", out]) == 2
    _one_line_error(capsys, "missing: no such file or folder")
    with pytest.raises(FileNotFoundError):
        main(["featurize", "--debug", str(tmp_path / "missing"), "-o", out])
    with pytest.raises(FileNotFoundError):
        main(["--debug", "featurize", str(tmp_path / "missing"), "-o", out])
    capsys.readouterr()
    assert main(["featurize", str(cif_folder), "-o", out, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["featurize", str(cif_folder), "-o", out, "--quiet", "--layers", "012"]) == 2  # resume, other settings
    _one_line_error(capsys, "other settings", "--overwrite")


def test_featurize_summary_counts_and_reasons(cif_folder, tmp_path, capsys):
    out = tmp_path / "o.parquet"
    assert main(["featurize", str(cif_folder), "-o", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "2 structures featurized, 1 failed, 1 non-structure files skipped" in err
    assert "readme.txt: skipped" in err and "truncated.cif: " in err and "CIF" in err
    assert f"in {out / '_errors.csv'}" in err and "Traceback" not in err
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "NaCl.cif").write_text((cif_folder / "NaCl.cif").read_text())
    assert main(["featurize", str(clean), "-o", str(tmp_path / "c.parquet"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "1 structures featurized, 0 failed, 0 non-structure files skipped" in err and "_errors.csv" not in err


def test_ctrl_c_says_how_to_resume_and_the_rerun_resumes(cif_folder, tmp_path, capsys, monkeypatch):
    from ssl_featurizer.featurizers.structure import SSLStructureFeaturizer

    original = SSLStructureFeaturizer.featurize_with_errors
    calls = {"n": 0}

    def interrupted_in_second_chunk(self, structures, progress=False):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # what Ctrl-C raises
        return original(self, structures, progress)

    monkeypatch.setattr(SSLStructureFeaturizer, "featurize_with_errors", interrupted_in_second_chunk)
    args = ["featurize", str(cif_folder), "-o", str(tmp_path / "o.parquet"), "--quiet", "--chunk-size", "2"]
    assert main(args) == 130
    _one_line_error(capsys, "interrupted", "rerun the same command to resume")
    monkeypatch.setattr(SSLStructureFeaturizer, "featurize_with_errors", original)
    assert main(args) == 0
    assert "(resumed after 2)" in capsys.readouterr().err
    monkeypatch.setattr(SSLStructureFeaturizer, "featurize_with_errors", interrupted_in_second_chunk)
    calls["n"] = 1
    with pytest.raises(KeyboardInterrupt):
        main(["--debug", *args[:3], str(tmp_path / "p.parquet"), *args[4:]])


def test_console_user_error_as_a_user_meets_it(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "ssl_featurizer.cli", "featurize", str(tmp_path / "nope.cif"),
                          "-o", str(tmp_path / "o")], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                         check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().splitlines() == [(f"ssl-featurizer featurize: error: {tmp_path / 'nope.cif'}: no such "
                                               "file or folder (--debug for the traceback)")]


def test_demo_writes_parquet_and_figure_as_quickstart_says(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "SrTiO3 (perovskite)" in out and "most similar" in out
    df = pd.read_parquet(tmp_path / "features.parquet")
    assert df.shape == (27, 128) and df.index[0] == "Si (diamond)" and df.notna().all().all()
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the quickstart's example pairs and shape are what the demo prints and writes
    text = " ".join((ROOT / "docs" / "quickstart.md").read_text().split())
    pairs = re.findall(r"(\w+) ↔ (\w+)", text)
    nearest = dict(re.findall(r"^(\S+) \(.*?\)\s+\d+\s+(\S+) \(", out, flags=re.MULTILINE))
    assert len(pairs) >= 2 and len(nearest) == 27
    for a, b in pairs:
        assert nearest[a] == b or nearest[b] == a, (a, b, nearest[a], nearest[b])
    assert f"`ssl_demo/features.parquet` ({df.shape[0]} × {df.shape[1]})" in text
