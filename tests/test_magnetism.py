"""Magnetism analysis on a handful of real MAGNDATA structures (copied from ../shared into a temporary data folder)."""

from __future__ import annotations

import copy
import gzip
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from magnetism import main
from magnetism_analysis import load_site_moments
from project_tasks import load_task

from ssl_featurizer.site_analysis import (
    coordination_labels,
    input_element_classes,
    plot_cosine_similarity,
    plot_separation,
    plot_site_maps,
    read_magnetic_cifs,
    separation_scores,
    site_descriptors,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_data(shared_file, tmp_path_factory):
    """A data folder with 10 small real magnetic structures, plus one undecodable entry, one site row without a
    structure and one whose element disagrees with its structure."""
    with gzip.open(shared_file("tasks/magndata_structures.json.gz"), "rt") as fh:
        raw = json.load(fh)
    sites = pd.read_csv(shared_file("tasks/magndata_site_moments.csv.gz"), dtype={"id": str})
    per = sites.groupby("id").size()
    small = [(mid, s) for mid, s in raw["data"] if len(s["sites"]) <= 16 and 2 <= per.get(mid, 0) <= 6
             and all(len(site["species"]) == 1 and site["species"][0]["occu"] == 1 for site in s["sites"])]
    chosen = small[:: max(1, len(small) // 10)][:10]
    bad = copy.deepcopy(chosen[0][1])
    del bad["lattice"]
    rows = [*chosen, ("bad.1", bad)]
    folder = tmp_path_factory.mktemp("magndata") / "data"
    (folder / "tasks").mkdir(parents=True)
    with gzip.open(folder / "tasks" / "magndata_structures.json.gz", "wt") as fh:
        json.dump({"columns": ["id", "structure"], "index": list(range(len(rows))), "data": rows}, fh)
    keep = sites[sites["id"].isin([mid for mid, _ in chosen])]
    first = keep.iloc[0]
    extra = pd.DataFrame([
        {"id": "bad.1", "site_index": 0, "element": first["element"], "magmom": 1.0, "in_kong2023": False},
        {"id": "missing.1", "site_index": 0, "element": "Fe", "magmom": 2.0, "in_kong2023": False},
        {**first.to_dict(), "element": "Xe"},
    ])
    pd.concat([keep, extra]).to_csv(folder / "tasks" / "magndata_site_moments.csv.gz", index=False)
    return folder, len(keep)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="module")
def described(tiny_data, cache_dir):
    folder, _ = tiny_data
    sites = load_site_moments("all", folder)
    emb, cnn, width = site_descriptors(sites, cache_dir=cache_dir)
    return sites, emb, cnn, width


def test_unusable_rows_are_reported_with_reason(tiny_data):
    folder, n_good = tiny_data
    sites = load_site_moments("all", folder)
    assert len(sites) == len(sites.task) == n_good
    f = sites.failures.set_index("id")
    assert set(f.index) == {"bad.1", "missing.1", sites.table["id"].iloc[0]}
    assert f.loc["bad.1", "kind"] == "unreadable structure" and "could not be read" in f.loc["bad.1", "reason"]
    assert f.loc["missing.1", "kind"] == "missing structure"
    assert "element Xe in the site table" in f.loc[sites.table["id"].iloc[0], "reason"]
    assert "3 source rows left out" in " ".join(sites.task.notes)
    assert (sites.table["magmom"] > 0).all() and sites.table["element"].str.len().gt(0).all()
    # a sample draws whole materials from the site table and decodes only theirs: each keeps all its usable sites,
    # and only the sample's unusable rows are reported
    few = load_site_moments("all", folder, max_sites=5, seed=3)
    assert 0 < len(few) < n_good and set(few.failures["id"]) <= set(f.index)
    for mid in set(few.table["id"]):
        assert (few.table["id"] == mid).sum() == (sites.table["id"] == mid).sum()
    assert len(few) + len(few.failures) >= 5 and "before decoding" in " ".join(few.task.notes)


def test_site_task_subset_keeps_whole_materials(tiny_data):
    task = load_task("magndata_site_moments", tiny_data[0])
    sub = task.subset(10, seed=1)
    assert len(sub) >= 10
    for mid in set(sub.groups):  # every material of the subset keeps all its sites
        assert (sub.groups == mid).sum() == (task.groups == mid).sum()
    assert len(task.fingerprint()) == 20


def test_descriptors_and_motifs(described):
    sites, emb, cnn, width = described
    assert width == 64 and emb.shape == (len(sites), 6 * 64) and cnn.shape == (len(sites), 61)
    assert np.isfinite(emb).all()  # ordered, non-overlapping structures: nothing fails
    labels = coordination_labels(cnn)
    assert len(labels) == len(sites) and (labels["cn"] > 0).all()
    assert all(f"CN {c}" in m for c, m in zip(labels["cn"], labels["motif"]))
    assert labels["motif_value"].dropna().between(0, 1.0 + 1e-9).all()


def test_separation_scores_shape_and_range(described):
    sites, emb, cnn, width = described
    labels = coordination_labels(cnn)
    scores = separation_scores(emb, {"element": sites.table["element"], "motif": labels["motif"]},
                               sites.table["id"], width, n_splits=3, min_class_size=2, min_class_groups=2)
    assert len(scores) == 2 * 12  # 2 labellings × (6 single layers + 6 cumulative sets)
    assert set(scores["mode"]) == {"single", "cumulative"}
    assert set(scores["layers"]) == {"0", "1", "2", "3", "4", "5", "01", "012", "0123", "01234", "012345"}
    scored = scores.dropna(subset=["knn_accuracy"])
    assert len(scored) >= 12
    assert scored[["knn_accuracy", "knn_balanced_accuracy", "chance"]].stack().between(0, 1).all()
    assert scored["silhouette"].between(-1, 1).all()


def test_separation_scores_measure_separation():
    """Labels written into the embedding are separated perfectly; labels independent of it are not."""
    rng = np.random.default_rng(0)
    n, width = 300, 8
    groups = np.repeat(np.arange(60), 5)
    encoded = rng.integers(0, 3, n)
    emb = rng.normal(size=(n, 2 * width))
    emb[:, :width] += 10 * np.eye(3)[encoded].repeat(3, axis=1)[:, :width]  # layer 0 carries the label
    random_labels = rng.integers(0, 3, n)
    s = separation_scores(emb, {"encoded": encoded, "random": random_labels}, groups, width, min_class_size=5)
    s = s.set_index(["label", "mode", "layers"])
    assert s.loc[("encoded", "single", "0"), "knn_accuracy"] == 1.0
    assert s.loc[("encoded", "single", "0"), "silhouette"] > 0.5
    assert s.loc[("encoded", "single", "1"), "knn_accuracy"] < 0.6  # layer 1 is noise
    assert s.loc[("random", "single", "0"), "knn_accuracy"] < 0.6
    with pytest.raises(ValueError, match="multiple of width"):
        separation_scores(emb[:, :5], {"x": encoded}, groups, width)


def test_figures_written(described, tmp_path):
    sites, emb, cnn, width = described
    labels = coordination_labels(cnn)
    scores = separation_scores(emb, {"element": sites.table["element"]}, sites.table["id"], width,
                               n_splits=3, min_class_size=2, min_class_groups=2)
    paths = [plot_separation(scores, tmp_path / "sep.png"),
             plot_site_maps(emb, {"element": sites.table["element"], "motif": labels["motif"]}, tmp_path / "map.png",
                            ("0", "012"), width, max_points=60),
             plot_cosine_similarity(emb, sites.table, tmp_path / "cos.png")[0]]
    for path in paths:
        assert path.read_bytes()[:8] == PNG
    _, summary = plot_cosine_similarity(emb, sites.table, tmp_path / "cos2.png", layers="0")
    same = summary.set_index("kind")
    # layer 0 is the element embedding: two sites of one element are identical
    assert same.loc["same material, same element", "share_above_0.99"] == 1.0


def test_read_magnetic_cifs_reports_failures(described, tmp_path):
    from pymatgen.io.cif import CifWriter

    sites = described[0]
    structure = sites.task.inputs[0][0]
    CifWriter(structure, write_magmoms=True).write_file(tmp_path / "good.mcif")
    (tmp_path / "broken.mcif").write_text("data_broken\n_cell_length_a 5\nloop_\n_atom_site_label\n")
    (tmp_path / "empty.mcif").write_text("")
    ok, failed = read_magnetic_cifs(sorted(tmp_path.glob("*.mcif")))
    assert list(ok["id"]) == ["good"] and len(ok["structure"].iloc[0]) == len(structure)
    assert ok["n_magnetic_sites"].iloc[0] == sum(np.linalg.norm(m) > 0 for m in structure.site_properties["magmom"])
    assert sorted(failed["id"]) == ["broken", "empty"]
    assert failed["reason"].str.len().gt(0).all()


def test_study_command(tiny_data, described, cache_dir, tmp_path, capsys):
    folder, _ = tiny_data
    out = tmp_path / "mag"
    main(["analysis", "--out", str(out), "--data-dir", str(folder), "--subset", "all", "--cache-dir",
          str(cache_dir), "--min-class-size", "2", "--min-class-materials", "2"])
    printed = capsys.readouterr().out
    assert "magnetic sites" in printed and "element" in printed
    for name in ("separation.png", "tsne.png", "cosine.png"):
        assert (out / name).read_bytes()[:8] == PNG
    scores = pd.read_csv(out / "separation.csv")
    assert {"element", "motif", "CN"} <= set(scores["label"])
    failures = pd.read_csv(out / "failures.csv", dtype={"id": str})
    assert {"bad.1", "missing.1"} <= set(failures["id"])
    run = json.loads((out / "run.json").read_text())
    assert run["n_failures"] == len(failures) and run["n_sites"] == len(described[0])
    try:  # UMAP is an optional extra: drawn when importable, otherwise skipped with a note
        import umap  # noqa: F401
        assert (out / "umap.png").read_bytes()[:8] == PNG
    except ImportError:
        assert not (out / "umap.png").exists() and any("UMAP skipped" in n for n in run["notes"])


def test_input_element_classes():
    """Elements with equal rows of the model's element table form one class (the encoder cannot tell them apart)."""
    classes = input_element_classes(["Tb", "Dy", "Fe", "Mn", "Fe", ""], model="cgcnn-ssl-mp2025@1.0")  # table v1
    assert classes[0] == classes[1] and "Tb" in classes[0].split("/") and "Dy" in classes[0].split("/")
    assert list(classes[2:5]) == ["Fe", "Mn", "Fe"] and classes[5] is None
    # table v2 (cgcnn-ssl-mp2025@1.1) gives every element its own row
    assert list(input_element_classes(["Tb", "Dy", "Gd", "Nd", "Pr"], model="cgcnn-ssl-mp2025@1.1")) == [
        "Tb", "Dy", "Gd", "Nd", "Pr"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_balanced_accuracy_is_sklearns(pairs):
    from sklearn.metrics import balanced_accuracy_score

    from ssl_featurizer.site_analysis.scores import balanced_accuracy

    y_true, y_pred = (np.array([f"c{v}" for v in column]) for column in zip(*pairs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when a predicted class is absent from y_true
        assert balanced_accuracy(y_true, y_pred) == pytest.approx(balanced_accuracy_score(y_true, y_pred))
