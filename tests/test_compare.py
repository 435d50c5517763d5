"""``compare()`` and ``ssl-featurizer bench``: the headline's protocol on a user's data, its statistics and readers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from ssl_featurizer.bench.stats import holm, set_verdict

ROOT = Path(__file__).resolve().parents[1]


def test_holm_by_hand():
    # m = 4: sorted 0.01, 0.02, 0.03, 0.04 -> 0.04, 0.06, 0.06 (monotone: max(0.06, 0.06)), 0.06 (max(0.06, 0.04))
    adjusted = holm([0.03, 0.01, 0.04, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9])[1] == 1.0 and holm([0.5, 0.9])[0] == 1.0  # capped at 1
    # NaN entries are not tests: the family size is the number of p-values given
    np.testing.assert_allclose(holm([0.01, np.nan, 0.02]), [0.02, np.nan, 0.02])
    assert holm([0.001])[0] == pytest.approx(0.001)


def test_decide_gives_verdicts_on_adjusted_p_only():
    from ssl_featurizer.bench.comparison import decide

    base = {"task": "t", "diff": -0.1, "diff_std": 0.01, "t": -5.0, "mean_a": 0.1, "mean_b": 0.2, "n_splits": 10,
            "complete": True}
    # raw p 0.03 wins alone, but not among three tests (adjusted 0.09)
    alone = decide([{**base, "a": "ssl", "b": "handbuilt", "p": 0.03}])
    assert alone[0]["verdict"] == "ssl wins" and alone[0]["family_size"] == 1
    three = decide([{**base, "a": "ssl", "b": "handbuilt", "p": 0.03}, {**base, "a": "ssl", "b": "peer", "p": 0.5},
                    {**base, "a": "handbuilt", "b": "peer", "p": 0.04, "complete": False}])
    assert [c["verdict"] for c in three] == ["tie", "tie", "no verdict (incomplete menu)"]
    assert three[0]["p_holm"] == pytest.approx(0.09) and three[0]["p"] == 0.03 and three[0]["family_size"] == 3


def test_material_set_rule():
    assert set_verdict(["ssl wins", "ssl wins"], "ssl", "peer") == "ssl wins"
    assert set_verdict(["ssl wins", "tie"], "ssl", "peer") == "tie"
    assert set_verdict(["ssl wins", "peer wins"], "ssl", "peer") == "tie"
    assert set_verdict(["peer wins", "peer wins"], "ssl", "peer") == "peer wins"
    assert set_verdict(["ssl wins", "no verdict (incomplete menu)"], "ssl", "peer").startswith("no verdict")
    with pytest.raises(ValueError):
        set_verdict([], "ssl", "peer")


def _nacl(a: float = 5.6) -> Structure:
    return Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_csv_reader_is_strict_and_reports_every_bad_row(tmp_path):
    from ssl_featurizer.readers import read_structure_csv

    hostile = json.dumps({"@module": "os", "@class": "system", "args": ["echo pwned"]})
    path = tmp_path / "data.csv"
    pd.DataFrame({"id": ["ok", "hostile", "garbage"], "structure": [json.dumps(_nacl().as_dict()), hostile, "{not json"],
                  "y": [1.0, 2.0, 3.0]}).to_csv(path, index=False)
    rows, failures = read_structure_csv(path)
    assert [r["id"] for r in rows] == ["ok"] and isinstance(rows[0]["structure"], Structure)
    assert [f["id"] for f in failures] == ["hostile", "garbage"]
    assert all("could not be read" in f["reason"] for f in failures)
    with pytest.raises(ValueError, match="no column 'cif'"):
        read_structure_csv(path, structure="cif")


def test_jsonl_and_labels_readers(tmp_path):
    from ssl_featurizer.readers import read_labels_csv, read_structure_jsonl

    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"id": "a", "structure": _nacl().as_dict(), "y": 1.5}) + "\n" + "[1, 2]\n"
                    + json.dumps({"id": "b", "structure": {"@module": "subprocess", "@class": "Popen"}, "y": 2}) + "\n")
    rows, failures = read_structure_jsonl(path)
    assert [(r["id"], r["y"]) for r in rows] == [("a", 1.5)]
    assert [f["id"] for f in failures] == ["data.jsonl:2", "b"]
    labels = tmp_path / "labels.csv"
    labels.write_text("id,gap\nx,1.0\ny,nan\nz,abc\nw,2\n")
    values, bad = read_labels_csv(labels)
    assert values == {"x": 1.0, "w": 2.0} and [b["id"] for b in bad] == ["y", "z"]
    labels.write_text("id,gap\nx,1.0\nx,2.0\n")
    with pytest.raises(ValueError, match="given twice"):
        read_labels_csv(labels)
    labels.write_text("name,gap\nx,1.0\n")
    with pytest.raises(ValueError, match="no 'id' column"):
        read_labels_csv(labels)


def test_load_table_joins_a_folder_with_its_labels(tmp_path):
    from ssl_featurizer.bench.comparison import load_table

    folder = tmp_path / "cells"
    folder.mkdir()
    for k in range(3):
        _nacl(5.5 + 0.1 * k).to(filename=str(folder / f"s{k}.cif"))
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("id,y\ns0,1.0\ns1.cif,2.0\ns2,3.0\nghost,4.0\n")
    task = load_table(folder, labels=labels)
    assert len(task) == 3 and sorted(task.y) == [1.0, 2.0, 3.0]
    kinds = sorted(f["kind"] for f in task.failures)
    assert kinds == ["no structure", "unreadable structure"]


def _write_table(df: pd.DataFrame, path: Path) -> Path:
    """``df`` (structures as dicts) as a matminer JSON dataframe, a CSV of JSON text or JSON lines, by suffix."""
    if path.suffix == ".json":
        path.write_text(json.dumps({"columns": list(df.columns), "index": list(range(len(df))),
                                    "data": df.to_numpy().tolist()}))
    elif path.suffix == ".csv":
        df.assign(structure=[json.dumps(s) for s in df["structure"]]).to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in df.to_dict(orient="records")))
    return path


@pytest.mark.parametrize("suffix", [".json", ".csv", ".jsonl"])
def test_limit_decodes_only_the_sample_and_draws_what_subset_draws(tmp_path, monkeypatch, suffix):
    from ssl_featurizer import readers
    from ssl_featurizer.bench.comparison import load_table

    df = pd.DataFrame({"id": [f"m{k}" for k in range(20)], "y": np.arange(20.0),
                       "structure": [_nacl(5.0 + 0.05 * k).as_dict() for k in range(20)]})
    path = _write_table(df, tmp_path / f"data{suffix}")
    whole = load_table(path, "y")
    decoded = []
    real = readers.structure_from_object

    def counting(obj):
        if not isinstance(obj, Structure):
            decoded.append(obj)
        return real(obj)

    monkeypatch.setattr(readers, "structure_from_object", counting)
    sample = load_table(path, "y", limit=5, seed=4)
    assert len(decoded) == 5  # the 15 other structures are never decoded
    expected = whole.subset(5, seed=4)
    assert sample.y.tolist() == expected.y.tolist()
    assert all(a == b for a, b in zip(sample.inputs, expected.inputs))
    # a row the sample leaves out is not read, hence not reported; one it keeps is reported with its reason
    broken = df.assign(structure=[{"lattice": "no"} if k == 0 else s for k, s in enumerate(df["structure"])])
    path = _write_table(broken, tmp_path / f"broken{suffix}")
    kept = expected.y.astype(int).tolist()
    assert 0 not in kept
    assert not load_table(path, "y", limit=5, seed=4).failures  # row 0 is not in seed 4's sample
    broken = df.assign(structure=[{"lattice": "no"} if k == kept[0] else s for k, s in enumerate(df["structure"])])
    sample = load_table(_write_table(broken, tmp_path / f"again{suffix}"), "y", limit=5, seed=4)
    assert len(sample) == 4 and [f["id"] for f in sample.failures] == [f"m{kept[0]}"]


def test_limit_of_a_grouped_site_table_keeps_whole_materials(tmp_path):
    from ssl_featurizer.bench.comparison import load_table

    rows = [{"id": f"m{k}-{i}", "material": f"m{k}", "structure": _nacl(5.0 + 0.05 * k).as_dict(), "site": i,
             "m": float(10 * k + i)} for k in range(8) for i in range(2)]
    path = _write_table(pd.DataFrame(rows), tmp_path / "sites.json")
    whole = load_table(path, "m", site_index="site", group="material")
    sample = load_table(path, "m", site_index="site", group="material", limit=5, seed=1)
    assert sample.y.tolist() == whole.subset(5, seed=1).y.tolist()
    assert len(sample) == 6 and all(list(sample.groups).count(g) == 2 for g in sample.groups)  # 3 whole materials


def test_site_task_from_a_frame_is_grouped_by_structure():
    from ssl_featurizer.bench.comparison import task_from_frame

    a, b = _nacl(5.6), _nacl(5.9)
    df = pd.DataFrame({"structure": [a.as_dict(), a.as_dict(), json.dumps(b.as_dict()), b, b],
                       "site": [0, 1, 0, 1, 7], "m": [1.0, 2.0, 3.0, 4.0, 5.0]})
    task = task_from_frame(df, "structure", "m", site_index="site")
    assert task.level == "site" and len(task) == 4
    assert task.groups[0] == task.groups[1] != task.groups[2] == task.groups[3]  # same content, same group
    assert task.failures[0]["kind"] == "bad site index"


@pytest.fixture(scope="module")
def kvrh40(shared_file):
    from project_tasks import load_task

    shared_file("tasks/kong2023_log_kvrh.json.gz")
    return load_task("kong2023_log_kvrh", limit=40, seed=3)


def test_compare_end_to_end_on_real_structures(kvrh40, tmp_path):
    from ssl_featurizer.bench.comparison import compare

    df = pd.DataFrame({"structure": [json.dumps(s.as_dict()) for s in kvrh40.inputs], "log_k": kvrh40.y})
    lines: list[str] = []
    report = compare(df, target="log_k", families=("ssl", "handbuilt"), name="kvrh40",
                     menus={"ssl": ["ssl:01", "ssl:012+magpie"], "handbuilt": ["magpie"]},
                     repeats=1, folds=4, out=tmp_path, estimate=True, progress=False, log=lines.append)
    # the menus are printed before the run, each family's as declared, then the cost estimate, then the splits
    assert lines[1] == "  ssl: 2 variants: ssl:01, ssl:012+magpie"
    estimate = next(k for k, line in enumerate(lines) if line.startswith("featurization estimate"))
    assert estimate < next(k for k, line in enumerate(lines) if " r0f0: " in line)
    assert set(report.estimate) == {"ssl", "handbuilt"} and all(s > 0 for s in report.estimate.values())
    assert len(report.per_split) == 2 * 4 and set(report.per_split.family) == {"ssl", "handbuilt"}
    assert set(report.per_split.spec) <= {"ssl:01", "ssl:012+magpie", "magpie"}
    # each test row of each split is predicted once per family; the per-split MAE is the predictions' MAE
    preds = report.predictions
    for (family, split), p in preds.groupby(["family", "split"]):
        row = report.per_split[(report.per_split.family == family) & (report.per_split.split == split)].iloc[0]
        assert len(p) == row.n_test and p.row.is_unique
        assert np.mean(np.abs(p.y - p.prediction)) == pytest.approx(row.test_mae)
    c = report.comparisons.iloc[0]
    assert (c.a, c.b, c.family_size) == ("ssl", "handbuilt", 1) and c.p_holm == pytest.approx(c.p)
    md = report.markdown()
    assert "| mean baseline |" in md and "adjusted p" in md
    assert {"report.md", "per_split.csv", "comparisons.csv", "report.json", "mae_per_split.png", "parity.png"} <= {
        p.name for p in tmp_path.iterdir()}
    # resumable: a rerun into the same folder reuses every split (same rows, nothing refitted)
    again = compare(df, target="log_k", families=("ssl", "handbuilt"), name="kvrh40",
                    menus={"ssl": ["ssl:01", "ssl:012+magpie"], "handbuilt": ["magpie"]},
                    repeats=1, folds=4, out=tmp_path, estimate=False, progress=False, log=None)
    pd.testing.assert_frame_equal(again.per_split, report.per_split)


def test_the_distilled_family_is_the_ssl_menu_on_the_distilled_model_and_says_what_it_learned_from(kvrh40, tmp_path):
    """``distilled`` reads the same declared menu through the shipped distilled model (filed under its name, with
    its own features), and the report says it is not self-supervised and whose labels it inherits."""
    from ssl_featurizer.bench.comparison import compare
    from ssl_featurizer.bench.families import DISTILLED_MODEL, declared_menu
    from ssl_featurizer.models.catalog import read_card, resolve_model

    assert declared_menu("distilled") == declared_menu("ssl")
    df = pd.DataFrame({"structure": [json.dumps(s.as_dict()) for s in kvrh40.inputs[:24]], "log_k": kvrh40.y[:24]})
    lines: list[str] = []
    report = compare(df, target="log_k", families=("ssl", "distilled"), name="kvrh24",
                     menus={"ssl": ["ssl:01"], "distilled": ["ssl:01"]}, repeats=1, folds=3, estimate=False,
                     progress=False, log=lines.append)
    models = report.per_split.groupby("family").model.unique()
    assert list(models["distilled"]) == [resolve_model(DISTILLED_MODEL)[0]]
    assert list(models["ssl"]) == [resolve_model("default")[0]]
    teacher = read_card(DISTILLED_MODEL)["label_overlap"]["inherited_from"]
    assert any(n.startswith("distilled:") and "not self-supervised" in n and teacher in n for n in report.notes)
    assert any(line.startswith("  note: distilled:") for line in lines)
    # the same rows and splits, other features: the two families' predictions differ
    a, b = (report.predictions[report.predictions.family == f].sort_values(["split", "row"]) for f in ("ssl", "distilled"))
    assert (a.row.to_numpy() == b.row.to_numpy()).all() and not np.allclose(a.prediction, b.prediction)
    assert report.comparisons.iloc[0][["a", "b"]].tolist() == ["ssl", "distilled"]


def test_cli_bench_runs_the_nested_comparison_in_one_subprocess(kvrh40, tmp_path):
    folder = tmp_path / "cells"
    folder.mkdir()
    ids = [f"m{k}" for k in range(30)]
    for name, s in zip(ids, kvrh40.inputs):
        (folder / f"{name}.json").write_text(json.dumps(s.as_dict()))
    (tmp_path / "labels.csv").write_text("id,log_k\n" + "".join(f"{n},{y}\n" for n, y in zip(ids, kvrh40.y)))
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "ssl_featurizer.cli", "bench", str(folder), "--labels",
                             str(tmp_path / "labels.csv"), "--families", "handbuilt", "--repeats", "1", "--folds", "3",
                             "--no-estimate", "--quiet", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    # the declared (fast) menu is printed before the run, and what was left out of it is said (soap needs dscribe,
    # an optional extra: the menu is the one declared for this installation)
    from ssl_featurizer.bench.comparison import declared_families

    variants = declared_families(["handbuilt"], "structure")[0]["handbuilt"]["variants"]
    assert f"  handbuilt: {len(variants)} variants: {', '.join(variants)}" in result.stderr
    assert "ofm (about 1 s per structure)" in result.stderr
    assert "# cells: 30 structures" in result.stdout
    assert f"| handbuilt | — | {len(variants)} variants × 2 regressors |" in result.stdout
    assert len(pd.read_csv(out / "per_split.csv")) == 3


def test_the_named_preset_is_the_development_tasks_choice():
    """The preset is what the nested choice picked most often for the default model on the development tasks
    (never the benchmark tasks): it follows the choice table on disk, it is not typed in by hand."""
    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.featurizers.structure import PRESETS
    from ssl_featurizer.models.catalog import resolve_model

    choices = pd.read_csv(ROOT / "docs" / "figures" / "default_choice.csv")
    default = choices[choices.model == resolve_model("default")[0]]
    assert len(default), "no development-task choice recorded for the registry default"
    spec = default.spec.value_counts().index[0]  # e.g. "ssl:0123:mean-std"
    parts = spec.split(":")
    f = SSLStructureFeaturizer.from_preset("dev-choice")
    assert (f.layers, tuple(f.pooling)) == (parts[1], tuple(parts[2].split("-")) if len(parts) > 2 else ("mean",))
    assert PRESETS["dev-choice"]["layers"] == parts[1]
    assert SSLStructureFeaturizer.from_preset("dev-choice", batch_size=8).batch_size == 8
    with pytest.raises(ValueError, match="unknown preset"):
        SSLStructureFeaturizer.from_preset("best")


def test_families_are_declared_before_anything_runs(monkeypatch):
    """The authors family needs its folder; peer runs only installed encoders (none: left out, said why); the fast
    hand-built menu states what it leaves out; a restricted menu must come from the declared one."""
    from ssl_featurizer.bench.comparison import compare, declared_families
    from ssl_featurizer.bench.families import SLOW
    from ssl_featurizer.models import registry

    with pytest.raises(ValueError, match="authors family needs"):
        declared_families(("ssl", "authors"), "structure")
    fast, notes = declared_families(("handbuilt",), "structure")
    assert not any(s in v.split("+") for v in fast["handbuilt"]["variants"] for s in SLOW)
    assert any("ofm (about 1 s per structure)" in n for n in notes)
    slow, _ = declared_families(("handbuilt",), "structure", slow=True)
    assert set(fast["handbuilt"]["variants"]) < set(slow["handbuilt"]["variants"])
    monkeypatch.setattr(registry, "list_foreign_models", lambda installed=True: [])
    none, notes = declared_families(("ssl", "peer"), "structure")
    assert list(none) == ["ssl"] and any(n.startswith("peer: left out") for n in notes)
    df = pd.DataFrame({"structure": [_nacl(5.0 + 0.05 * k) for k in range(12)], "y": np.arange(12.0)})
    with pytest.raises(ValueError, match="not in its declared menu"):
        compare(df, families=("ssl",), menus={"ssl": ["ssl:5"]}, estimate=False, progress=False, log=None)
