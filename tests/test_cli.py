"""Command line: the README's demo, the model list, and the README ↔ CI contract."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ssl_featurizer.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_writes_parquet_and_figure(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--layers", "01", "--pooling", "mean+std"]) == 0
    out = capsys.readouterr().out
    assert "SrTiO3 (perovskite)" in out and "most similar" in out
    df = pd.read_parquet(tmp_path / "features.parquet")
    assert df.shape == (27, 256) and df.index[0] == "Si (diamond)" and df.notna().all().all()
    assert (tmp_path / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
