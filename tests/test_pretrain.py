"""Pretraining: seeded masks, graph cache, exact resume, checkpoint integrity, CLI, export."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ssl_featurizer.cli import main
from ssl_featurizer.encoder.model import EncoderConfig
from ssl_featurizer.training.cache import GraphStore, build_graph_cache
from ssl_featurizer.training.objectives import ObjectivesConfig, mask_atoms
from ssl_featurizer.training.trainer import CheckpointError, Pretrainer, TrainConfig, load_checkpoint, split_indices


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, crystals):
    """The built-in crystals (and 2×1×1 supercells) as a JSON-lines corpus, like ../shared/data/mp2025."""
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl.gz"
    rows = []
    for k, s in enumerate(list(crystals.values()) + [s * (2, 1, 1) for s in crystals.values()]):
        rows.append({"id": f"x-{k}", "lattice": s.lattice.matrix.tolist(), "species": [e.symbol for e in s.species],
                     "frac": s.frac_coords.tolist()})
    with gzip.open(path, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    return path


@pytest.fixture(scope="module")
def store(corpus, tmp_path_factory):
    cache = build_graph_cache(corpus, tmp_path_factory.mktemp("cache"), shard_size=20, progress=False)
    return GraphStore.load(cache)


def small_config(**kw):
    base = {"epochs": 2, "batch_size": 8, "val_fraction": 0.2, "warmup_steps": 3, "checkpoint_every": 3,
            "eval_every": 4, "encoder": EncoderConfig(width=16, n_layers=2)}
    return TrainConfig(**{**base, **kw})


def test_masks_are_seeded_and_sized():
    batch = np.repeat(np.arange(4), [1, 7, 20, 40])
    m1 = mask_atoms(batch, 0.15, np.random.default_rng([0, 1, 2]))
    m2 = mask_atoms(batch, 0.15, np.random.default_rng([0, 1, 2]))
    assert np.array_equal(m1, m2)
    assert np.bincount(batch[m1], minlength=4).tolist() == [1, 1, 3, 6]  # max(1, round(0.15 n))


def test_cache_matches_direct_graphs(store, crystals):
    from ssl_featurizer.graph.crystal_graph import build_graph

    assert len(store) == 2 * len(crystals)
    b = store.batch([0])
    g = build_graph(next(iter(crystals.values())))
    assert torch.equal(b.edge_index, torch.from_numpy(g.edge_index))
    train, val = split_indices(store.ids, 0.2)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == len(store)


def test_unreadable_corpus_rows_are_left_out_with_their_reason(corpus, tmp_path):
    """A row the reader cannot turn into a structure is recorded in the manifest, not a crash of the build."""
    with gzip.open(corpus, "rt") as fh:
        lines = fh.readlines()
    first = json.loads(lines[0])
    broken = {**first, "id": "broken-1", "frac": first["frac"] + [[0.5, 0.5, 0.5]]}  # one site more than species
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(lines[:3]) + json.dumps(broken) + "\n")
    cache = build_graph_cache(path, tmp_path / "cache", shard_size=20, progress=False)
    errors = json.loads((cache / "manifest.json").read_text())["errors"]
    assert [e[0] for e in errors] == ["broken-1"] and "could not build a structure" in errors[0][1]
    assert list(GraphStore.load(cache).ids) == [json.loads(line)["id"] for line in lines[:3]]


def test_resume_is_exact(store, tmp_path):
    full = Pretrainer(store, tmp_path / "full", small_config())
    metrics_full = full.train(progress=False)
    part = Pretrainer(store, tmp_path / "part", small_config(max_steps=4))  # "killed" after 4 steps
    part.train(progress=False)
    resumed = Pretrainer(store, tmp_path / "part", small_config())
    assert resumed.global_step == 0
    metrics_resumed = resumed.train(resume=True, progress=False)
    assert resumed.global_step == full.global_step
    for key, value in full.encoder.state_dict().items():
        assert torch.equal(value, resumed.encoder.state_dict()[key]), key
    assert metrics_full == metrics_resumed
    rows_full = (tmp_path / "full" / "history.csv").read_text().splitlines()
    rows_resumed = (tmp_path / "part" / "history.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows_full] == [r.split(",")[:2] for r in rows_resumed]


def test_corrupted_checkpoint_is_refused(store, tmp_path):
    Pretrainer(store, tmp_path, small_config(max_steps=3)).train(progress=False)
    ckpt = tmp_path / "checkpoint.pt"
    load_checkpoint(ckpt)
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        Pretrainer(store, tmp_path, small_config()).train(resume=True, progress=False)
    with pytest.raises(CheckpointError, match="different training config"):
        trainer = Pretrainer(store, tmp_path / "other", small_config(max_steps=3))
        trainer.train(progress=False)
        Pretrainer(store, tmp_path / "other", small_config(lr=1.0)).train(resume=True, progress=False)


def test_cli_pretrain_export_and_load(corpus, tmp_path, capsys):
    run, cache, model_dir = tmp_path / "run", tmp_path / "cache", tmp_path / "model"
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(cache), "--out", str(run), "--epochs", "1",
            "--batch-size", "8", "--width", "16", "--depth", "2", "--val-fraction", "0.2", "--warmup-steps", "2"]
    assert main(args) == 0
    assert main(args + ["--resume"]) == 0  # already finished: resumes at the end, trains nothing more
    assert main(["export", "--run", str(run), "--cache-dir", str(cache), "--out", str(model_dir),
                 "--name", "tiny", "--version", "0.0"]) == 0
    card = json.loads((model_dir / "card.json").read_text())
    assert card["training"]["epochs"] == 1.0 and 0 <= card["metrics"]["val_group_acc"] <= 1
    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.examples import example_structures

    X = SSLStructureFeaturizer(model=str(model_dir), layers="012").fit_transform(list(example_structures().values()))
    assert X.shape == (27, 48) and np.isfinite(X).all()


def test_cli_pretrain_with_element_table_v2_exports_a_loadable_model(corpus, tmp_path, capsys):
    run, cache, model_dir = tmp_path / "run", tmp_path / "cache", tmp_path / "model"
    assert main(["pretrain", "--data", str(corpus), "--cache-dir", str(cache), "--out", str(run), "--epochs", "1",
                 "--batch-size", "8", "--width", "16", "--depth", "1", "--val-fraction", "0.2",
                 "--warmup-steps", "2", "--element-table", "v2"]) == 0
    assert main(["export", "--run", str(run), "--cache-dir", str(cache), "--out", str(model_dir),
                 "--name", "tiny", "--version", "0.1"]) == 0
    card = json.loads((model_dir / "card.json").read_text())
    from ssl_featurizer.graph.elements import load_element_table
    from ssl_featurizer.models.registry import load_model

    assert card["element_table"] == "v2" and card["encoder"]["n_node_features"] == 115
    assert card["element_table_sha256"] == load_element_table("v2").sha256
    assert "`v2`" in (model_dir / "README.md").read_text()
    model = load_model(str(model_dir))
    assert model.node_table.shape == (101, 115)
    card["element_table"] = "v9"  # a card naming a table this install does not have is refused by name
    other_dir = tmp_path / "model-v9"  # a fresh directory: the loaded model above is cached by its path
    shutil.copytree(model_dir, other_dir)
    (other_dir / "card.json").write_text(json.dumps(card))
    from ssl_featurizer.models.registry import ModelError

    with pytest.raises(ModelError, match="unknown element table 'v9'"):
        load_model(str(other_dir))


def test_table_width_must_match_the_encoder(store, tmp_path):
    with pytest.raises(ValueError, match="has 115 columns but the encoder expects n_node_features=79"):
        Pretrainer(store, tmp_path, small_config(element_table="v2"))


# ---- contrastive variant ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def views(corpus, tmp_path_factory):
    cache = build_graph_cache(corpus, tmp_path_factory.mktemp("views"), shard_size=20, progress=False, supercell=True)
    return GraphStore.load(cache)


def test_supercell_views_are_doubled_cells(store, views):
    assert list(views.ids) == list(store.ids) and views.fingerprint != store.fingerprint
    assert (views.n_atoms(range(len(views))) == 2 * store.n_atoms(range(len(store)))).all()
    for i in range(len(store)):  # same environments, twice: the sorted edge lengths repeat each value twice
        d1 = np.sort(store.dist[store.edge_ptr[i]:store.edge_ptr[i + 1]])
        d2 = np.sort(views.dist[views.edge_ptr[i]:views.edge_ptr[i + 1]])
        np.testing.assert_allclose(d2[::2], d1, atol=1e-4)
        np.testing.assert_allclose(d2[1::2], d1, atol=1e-4)


def test_nt_xent_prefers_aligned_views():
    from ssl_featurizer.training.objectives.contrastive import nt_xent

    g = torch.Generator().manual_seed(0)
    p = torch.randn(16, 8, generator=g)
    aligned, correct = nt_xent(p, p + 0.01 * torch.randn(16, 8, generator=g), 0.1)
    shuffled, _ = nt_xent(p, p[torch.randperm(16, generator=g)], 0.1)
    assert int(correct) == 16 and float(aligned) < 0.1 < float(shuffled)
    assert torch.isclose(nt_xent(p, 2 * p, 0.1)[0], nt_xent(p, p, 0.1)[0])  # cosine: scale-free


def with_objectives(*names, **kw):
    from ssl_featurizer.training.objectives import OBJECTIVES

    return small_config(objectives=ObjectivesConfig(enabled={n: OBJECTIVES[n].Params() for n in names}), **kw)


def contrastive_config(**kw):
    return with_objectives("masked_atoms", "edge_bins", "contrastive", **kw)


def test_contrastive_needs_views(store, tmp_path):
    with pytest.raises(ValueError, match="supercell view cache"):
        Pretrainer(store, tmp_path, contrastive_config())


def test_contrastive_training_learns_and_resumes_exactly(store, views, tmp_path):
    full = Pretrainer(store, tmp_path / "full", contrastive_config(), views=views)
    before = full.evaluate()
    after = full.train(progress=False)
    assert 0 <= after["val_contrastive_acc"] <= 1 and after["val_loss"] < before["val_loss"]
    Pretrainer(store, tmp_path / "part", contrastive_config(max_steps=3), views=views).train(progress=False)
    resumed = Pretrainer(store, tmp_path / "part", contrastive_config(), views=views)
    resumed.train(resume=True, progress=False)
    for key, value in full.encoder.state_dict().items():
        assert torch.equal(value, resumed.encoder.state_dict()[key]), key
    assert "contrastive.0.weight" in resumed.heads.state_dict()


def test_cli_contrastive_only(corpus, tmp_path, capsys):
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "8", "--width", "16", "--depth", "2", "--val-fraction", "0.2",
            "--contrastive", "--no-masked", "--no-edge"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {k for k in metrics if k.endswith("_acc")} == {"val_contrastive_acc"}
    assert (tmp_path / "cache-supercell" / "manifest.json").exists()


# ---- denoising variant --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vec_store(corpus, tmp_path_factory):
    cache = build_graph_cache(corpus, tmp_path_factory.mktemp("vec"), shard_size=20, progress=False, vectors=True)
    return GraphStore.load(cache)


def denoise_config(**kw):
    return with_objectives("masked_atoms", "edge_bins", "denoise", **kw)


def perturbed_distances(vectors, edge_index, noise):
    from ssl_featurizer.training.objectives.denoise import perturbed_vectors

    return torch.linalg.vector_norm(perturbed_vectors(vectors, edge_index, noise), dim=1)


def test_edge_vectors_reproduce_the_cached_graph(store, vec_store):
    assert vec_store.fingerprint == store.fingerprint and np.array_equal(vec_store.dist, store.dist)
    b = vec_store.batch(range(len(vec_store)))
    unperturbed = perturbed_distances(b.vector, b.edge_index, torch.zeros(len(b.z), 3))
    torch.testing.assert_close(unperturbed, b.distance, atol=1e-4, rtol=0)
    # a rigid shift of all atoms changes no distance; moving one atom changes exactly its own edges
    shifted = perturbed_distances(b.vector, b.edge_index, torch.full((len(b.z), 3), 0.3))
    torch.testing.assert_close(shifted, b.distance, atol=1e-4, rtol=0)
    one = torch.zeros(len(b.z), 3)
    one[0, 0] = 0.2
    moved = (perturbed_distances(b.vector, b.edge_index, one) - b.distance).abs() > 1e-4
    touches = (b.edge_index[0] == 0) | (b.edge_index[1] == 0)
    assert moved.any() and not (moved & ~touches).any()


def test_denoising_needs_edge_vectors(store, tmp_path):
    with pytest.raises(ValueError, match="edge vectors"):
        Pretrainer(store, tmp_path, denoise_config())


def positions_config(**kw):
    return with_objectives("masked_atoms", "edge_bins", "denoise", "denoise_positions", **kw)


@pytest.mark.parametrize("part", ["denoise", "positions"])
def test_denoising_learns_and_resumes_exactly(vec_store, tmp_path, part):
    """Edge-length denoising, and position denoising beside it: the held-out loss falls, a resumed run ends where
    an uninterrupted one does."""
    config = denoise_config if part == "denoise" else positions_config
    full = Pretrainer(vec_store, tmp_path / "full", config(epochs=3))
    before = full.evaluate()
    after = full.train(progress=False)
    assert after[f"val_{part}_loss"] < before[f"val_{part}_loss"] and 0 <= after[f"val_{part}_acc"] <= 1
    Pretrainer(vec_store, tmp_path / "part", config(epochs=3, max_steps=4)).train(progress=False)
    resumed = Pretrainer(vec_store, tmp_path / "part", config(epochs=3))
    assert resumed.train(resume=True, progress=False) == after
    for key, value in full.heads.state_dict().items():
        assert torch.equal(value, resumed.heads.state_dict()[key]), key


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 1000))
def test_position_prediction_rotates_with_the_crystal(vec_store, tmp_path_factory, seed):
    """Rotating every bond vector and every displacement of a step leaves the loss unchanged (the prediction is
    a sum of scalars times bond directions, so it turns with the crystal and the target does too)."""
    trainer = Pretrainer(vec_store, tmp_path_factory.mktemp("rot"), positions_config())
    trainer.model.eval()
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    rot = torch.from_numpy((q * np.sign(np.diag(r))).astype(np.float32))
    losses = []
    for turn in ("none", "all", "noise only"):
        step = trainer.collate(trainer.train_idx[:8], np.random.default_rng(seed))
        if turn == "all":
            step.vector, step.encoder_vector = step.vector @ rot.T, step.encoder_vector @ rot.T
        if turn != "none":
            step.extra["noise"] = step.extra["noise"] @ rot.T
        with torch.no_grad():
            step.h = trainer.encoder(step.x, step.edge_index, step.encoder_distance)[-1]
            objective = next(o for o in trainer.objectives if o.name == "denoise_positions")
            losses.append(float(objective.loss(trainer.heads["denoise_positions"], step, trainer.encoder)["loss"]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-4) and losses[0] > 0
    assert losses[2] != pytest.approx(losses[0], rel=1e-3)  # turning the target alone is seen


def test_position_denoising_needs_the_denoising_displacement(corpus, tmp_path, capsys):
    from ssl_featurizer.training.objectives import OBJECTIVES

    with pytest.raises(ValueError, match="needs the denoise objective"):
        ObjectivesConfig(enabled={"denoise_positions": OBJECTIVES["denoise_positions"].Params()})
    code = main(["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "r"),
                 "--denoise-positions"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "needs the denoise objective" in err[0]


def test_cli_denoising_builds_a_vector_cache(corpus, tmp_path, capsys):
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
            "--epochs", "1", "--batch-size", "8", "--width", "16", "--depth", "2", "--val-fraction", "0.2",
            "--denoise-sigma", "0.1"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert "val_denoise_acc" in metrics and "val_group_acc" in metrics
    assert json.loads((tmp_path / "cache" / "manifest.json").read_text())["vectors"] is True


def test_excluded_ids_are_left_out_recorded_and_checked(corpus, store, tmp_path, capsys):
    run, model_dir, listing = tmp_path / "run", tmp_path / "model", tmp_path / "benchmark_ids.txt"
    left_out = list(store.ids[:5])
    listing.write_text("# benchmark structures\n" + "\n".join(left_out + ["not-in-corpus"]) + "\n")
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--out", str(run),
            "--epochs", "1", "--batch-size", "8", "--width", "16", "--depth", "1", "--val-fraction", "0.2",
            "--warmup-steps", "2", "--exclude-ids", str(listing)]
    assert main(args) == 0
    assert main(["export", "--run", str(run), "--cache-dir", str(tmp_path / "cache"), "--out", str(model_dir),
                 "--name", "tiny", "--version", "0.2"]) == 0
    card = json.loads((model_dir / "card.json").read_text())
    train, val = split_indices(store.ids, 0.2)
    assert card["training"]["n_excluded"] == 5
    assert card["training"]["n_train"] + card["training"]["n_validation"] == len(train) + len(val) - 5
    assert (model_dir / "excluded_ids.txt").read_text().split() == sorted(left_out + ["not-in-corpus"])
    assert "Left out of training and held-out data: 5 corpus structures" in (model_dir / "README.md").read_text()
    trainer = Pretrainer(store, run, TrainConfig.from_dict(json.loads(load_checkpoint(run / "checkpoint.pt")["config"])))
    assert not set(store.ids[np.concatenate([trainer.train_idx, trainer.val_idx])]) & set(left_out)
    listing.write_text("\n".join(left_out[:2]) + "\n")  # another list for the same run directory: refused
    with pytest.raises(SystemExit, match="lists other ids than --exclude-ids"):
        main(args + ["--resume"])
    (run / "excluded_ids.txt").write_text("x-0\n")  # a tampered list no longer matches the config's digest
    with pytest.raises(ValueError, match="does not hold the ids the config was written for"):
        Pretrainer(store, run, trainer.cfg)


def test_cli_resume_with_other_settings_or_missing_corpus_prints_one_line(corpus, tmp_path, capsys):
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(cache), "--out", str(run), "--batch-size", "8",
            "--width", "16", "--depth", "2", "--val-fraction", "0.2", "--warmup-steps", "2", "--max-steps", "2",
            "--checkpoint-every", "2"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--lr", "0.5", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("ssl-featurizer pretrain: error: checkpoint was written with a "
                                                   "different training config") and "Traceback" not in err
    with pytest.raises(CheckpointError):
        main(["--debug", *args, "--lr", "0.5", "--resume"])
    capsys.readouterr()
    missing = ["pretrain", "--data", str(tmp_path / "none.jsonl.gz"), "--cache-dir", str(tmp_path / "c2"),
               "--out", str(tmp_path / "r2")]
    assert main(missing) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [(f"ssl-featurizer pretrain: error: --data {tmp_path / 'none.jsonl.gz'}: no such "
                                        "file (--debug for the traceback)")]


@settings(max_examples=60, deadline=None)
@given(masked=st.sampled_from([None, "all", "no-element"]), edge=st.booleans(),
       sigma=st.sampled_from([0.0, 0.05, 0.1, 0.2]), weight=st.sampled_from([1.0, 0.5]),
       contrastive=st.booleans(), temperature=st.sampled_from([0.1, 0.2]),
       fraction=st.sampled_from([0.15, 0.25]), positions=st.sampled_from([None, 1.0, 0.3]))
def test_command_flags_are_the_inverse_of_the_parsed_flags(masked, edge, sigma, weight, contrastive, temperature,
                                                           fraction, positions):
    """Every expressible objectives config → flags → the parser of `ssl-featurizer pretrain` → the same config
    (the model card's reproduce command is built this way)."""
    import argparse

    from ssl_featurizer.training.objectives import OBJECTIVES, add_arguments, command_flags, config_from_args

    enabled = {}
    if masked is not None:
        enabled["masked_atoms"] = OBJECTIVES["masked_atoms"].Params(element=masked == "all")
    if edge:
        enabled["edge_bins"] = OBJECTIVES["edge_bins"].Params()
    if sigma > 0:
        enabled["denoise"] = OBJECTIVES["denoise"].Params(sigma, weight)
    if contrastive:
        enabled["contrastive"] = OBJECTIVES["contrastive"].Params(temperature)
    if positions is not None and sigma > 0:
        enabled["denoise_positions"] = OBJECTIVES["denoise_positions"].Params(positions)
    assume(enabled)
    config = ObjectivesConfig(fraction, enabled)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert config_from_args(parser.parse_args(command_flags(config))) == config


def test_settings_without_a_flag_are_refused_by_command_flags():
    from ssl_featurizer.training.objectives import OBJECTIVES, command_flags

    config = ObjectivesConfig(enabled={"edge_bins": OBJECTIVES["edge_bins"].Params(bin_width=0.3)})
    with pytest.raises(ValueError, match="bin width"):
        command_flags(config)


@pytest.mark.parametrize("killed_after", [0, 1])
def test_a_checkpoint_killed_between_its_two_files_still_loads(tmp_path, monkeypatch, killed_after):
    """The checkpoint and its digest are two files: a kill before the first rename keeps the old pair, a kill
    between the renames leaves the new checkpoint with its digest pending; both load, neither is 'corrupted'."""
    import os

    from ssl_featurizer.training import trainer

    path = tmp_path / "checkpoint.pt"
    trainer._save_checkpoint(path, {"step": torch.tensor(1)})
    real_replace, calls = os.replace, {"n": 0}

    def killed(src, dst):
        if calls["n"] == killed_after:
            raise KeyboardInterrupt  # stands for SIGKILL at this point
        calls["n"] += 1
        real_replace(src, dst)

    monkeypatch.setattr(trainer.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer._save_checkpoint(path, {"step": torch.tensor(2)})
    monkeypatch.undo()
    assert int(trainer.load_checkpoint(path)["step"]) == (1 if killed_after == 0 else 2)
    path.write_bytes(path.read_bytes()[:-3])  # and a damaged file is still refused
    with pytest.raises(trainer.CheckpointError, match="corrupted"):
        trainer.load_checkpoint(path)


# -- distillation ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def teacher_targets(corpus, tmp_path_factory):
    """Per-atom targets of a real frozen teacher (our shipped 1.0 model, fast; a foundation potential in studies)."""
    from ssl_featurizer.training.teacher import build_teacher_targets

    return build_teacher_targets(corpus, tmp_path_factory.mktemp("teacher"), teacher="cgcnn-ssl-mp2025@1.0",
                                 layers="012", dims=8, chunk=20)


def distill_config(targets, **kw):
    from ssl_featurizer.training.objectives.distill import DistillParams

    return small_config(objectives=ObjectivesConfig(enabled={"distill": DistillParams(str(targets))}), **kw)


def test_teacher_targets_are_the_teachers_atoms_reduced_and_resumable(corpus, store, teacher_targets):
    from ssl_featurizer.embed import embed_structures
    from ssl_featurizer.models.registry import load_model
    from ssl_featurizer.readers import structure_from_object
    from ssl_featurizer.training.teacher import TeacherTargets, build_teacher_targets

    targets = TeacherTargets.load(teacher_targets)
    index = targets.align(store.ids, store.n_atoms(np.arange(len(store))))
    assert (index >= 0).all() and targets.values.shape == (int(store.atom_ptr[-1]), 8)
    assert targets.meta["teacher"] == "cgcnn-ssl-mp2025@1.0" and 0 < targets.meta["variance_kept"] <= 1
    # the targets are the teacher's atoms, standardised and projected (float16 storage: loose tolerance)
    with gzip.open(corpus, "rt") as fh:
        row = json.loads(fh.readline())
    teacher = load_model("cgcnn-ssl-mp2025@1.0")
    atoms = embed_structures(teacher, [structure_from_object(row)[0]], (0, 1, 2)).atoms[0]
    data = np.load(teacher_targets / "teacher.npz")
    expected = ((atoms - data["mean"]) / data["std"]) @ data["components"].T
    k = list(targets.ids).index(row["id"])
    assert np.allclose(targets.values[targets.atom_ptr[k]:targets.atom_ptr[k + 1]], expected, atol=0.05)
    # a rerun resumes from the chunks and writes the same targets
    before = (teacher_targets / "teacher.npz").read_bytes()
    build_teacher_targets(corpus, teacher_targets, teacher="cgcnn-ssl-mp2025@1.0", layers="012", dims=8, chunk=20)
    assert (teacher_targets / "teacher.npz").read_bytes() == before
    # a structure whose atom count differs from the graph cache's has no usable targets
    assert (targets.align(store.ids, store.n_atoms(np.arange(len(store))) + 1) == -1).all()


def test_distillation_learns_the_teacher_and_resumes_exactly(store, teacher_targets, tmp_path):
    full = Pretrainer(store, tmp_path / "full", distill_config(teacher_targets, epochs=3))
    before = full.evaluate()
    after = full.train(progress=False)
    assert after["val_distill_loss"] < before["val_distill_loss"] and 0 <= after["val_distill_acc"] <= 1
    Pretrainer(store, tmp_path / "part", distill_config(teacher_targets, epochs=3, max_steps=4)).train(progress=False)
    resumed = Pretrainer(store, tmp_path / "part", distill_config(teacher_targets, epochs=3))
    assert resumed.train(resume=True, progress=False) == after


def test_a_distilled_model_card_names_its_teacher_and_inherits_its_label_overlap(corpus, teacher_targets,
                                                                                    tmp_path, capsys):
    run, model_dir = tmp_path / "run", tmp_path / "model"
    meta_path = teacher_targets / "teacher.json"
    meta = json.loads(meta_path.read_text())
    overlap = {"labels": "energies of a labelled set", "overlapping_targets": ["formation energy"]}
    copy = tmp_path / "targets"
    shutil.copytree(teacher_targets, copy)
    (copy / "teacher.json").write_text(json.dumps({**meta, "label_overlap": overlap}))
    args = ["pretrain", "--data", str(corpus), "--cache-dir", str(tmp_path / "cache"), "--out", str(run),
            "--epochs", "1", "--batch-size", "8", "--width", "16", "--depth", "2", "--val-fraction", "0.2",
            "--distill-targets", str(copy)]
    assert main(args) == 0
    assert "val_distill_loss" in json.loads(capsys.readouterr().out)
    assert main(["export", "--run", str(run), "--cache-dir", str(tmp_path / "cache"), "--out", str(model_dir),
                 "--name", "tiny-distilled", "--version", "0.1"]) == 0
    card = json.loads((model_dir / "card.json").read_text())
    assert card["label_overlap"]["overlapping_targets"] == ["formation energy"]
    assert "cgcnn-ssl-mp2025@1.0" in card["label_overlap"]["inherited_from"]
    readme = (model_dir / "README.md").read_text()
    assert "Distillation" in readme and "energies of a labelled set" in readme
    assert f"--distill-targets {copy}" in readme  # the reproduce command names the targets


def test_a_continuation_starts_from_a_model_and_its_card_says_so(corpus, tmp_path, capsys):
    """``--init-from``: the encoder and the heads of the same objectives come from the model (with lr 0 the
    parameters stay exactly its own), a new objective's head starts at random, and a model of another encoder is
    refused in one line before any training."""
    from safetensors.torch import load_file

    cache, first, start = tmp_path / "cache", tmp_path / "first", tmp_path / "start"
    base = ["--data", str(corpus), "--batch-size", "8", "--width", "16", "--depth", "1", "--val-fraction", "0.2",
            "--warmup-steps", "1", "--epochs", "1"]
    assert main(["pretrain", *base, "--cache-dir", str(cache), "--out", str(first)]) == 0
    assert main(["export", "--run", str(first), "--cache-dir", str(cache), "--out", str(start), "--name", "tiny",
                 "--version", "0.1"]) == 0
    run, continued = tmp_path / "run", tmp_path / "continued"
    assert main(["pretrain", *base, "--cache-dir", str(tmp_path / "vectors"), "--out", str(run), "--init-from",
                 str(start), "--denoise-sigma", "0.1", "--lr", "0"]) == 0  # a new objective: denoising
    assert main(["export", "--run", str(run), "--cache-dir", str(tmp_path / "vectors"), "--out", str(continued), "--name", "tiny",
                 "--version", "0.2"]) == 0
    before, after = load_file(start / "model.safetensors"), load_file(continued / "model.safetensors")
    buffers = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm statistics move even at lr 0
    params = {k for k in before if not k.endswith(buffers)}
    assert params and all(torch.equal(before[k], after[k]) for k in params)
    assert any(k.startswith("heads.denoise.") for k in after) and not any(k.startswith("heads.denoise.") for k in before)
    card = json.loads((continued / "card.json").read_text())
    init = card["training"]["init_from"]
    assert init["model"] == str(start) and init["heads_reused"] == ["edge_bins", "masked_atoms"]
    assert init["weights_sha256"] == json.loads((start / "card.json").read_text())["weights"]["sha256"]
    readme = (continued / "README.md").read_text()
    assert f"Starts from `{start}`" in readme and f"--init-from {start}" in readme
    capsys.readouterr()
    assert main(["pretrain", *base, "--cache-dir", str(cache), "--out", str(tmp_path / "wide"), "--init-from", str(start), "--width", "32"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the run's" in err[0] and not (tmp_path / "wide" / "checkpoint.pt").exists()
