"""Turn a finished pretraining run into a shippable model directory (weights + card)."""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

import torch

from ssl_featurizer.graph.elements import load_element_table
from ssl_featurizer.models.registry import save_model
from ssl_featurizer.training.cache import MANIFEST, GraphStore, views_cache_dir
from ssl_featurizer.training.card import render_card
from ssl_featurizer.training.trainer import (
    CHECKPOINT,
    EXCLUDED,
    HISTORY,
    Pretrainer,
    TrainConfig,
    initial_weights,
    load_checkpoint,
    matching_heads,
)


def export_run(run_dir: str | Path, cache_dir: str | Path, out_dir: str | Path, name: str, version: str,
               description: str, extra: dict[str, Any] | None = None,
               views_dir: str | Path | None = None, corpus_description: str | None = None) -> dict[str, Any]:
    """Export the last checkpoint of ``run_dir`` to ``out_dir`` (``model.safetensors`` + ``card.json``).

    The card records the graph settings, architecture, objectives, data (corpus, sizes, held-out split),
    epochs and steps, wall time, the last validation metrics and the weights' sha256. What the corpus is
    (source, licence, overlap with benchmark tasks) is known only to the caller: pass it as
    ``corpus_description``; the card says nothing about the corpus beyond its file name otherwise. A
    contrastive run also needs its supercell view cache (default ``<cache_dir>-supercell``, as
    ``ssl-featurizer pretrain`` builds it).
    """
    run_dir = Path(run_dir)
    state = load_checkpoint(run_dir / CHECKPOINT)
    cfg = TrainConfig.from_dict(json.loads(state["config"]))
    manifest = json.loads((Path(cache_dir) / MANIFEST).read_text())
    with (run_dir / HISTORY).open() as fh:
        history = list(csv.DictReader(fh))
    last = {k: float(v) for k, v in history[-1].items()}
    views = None
    if any(o.needs_views for o in cfg.objectives.build()):
        views = GraphStore.load(views_dir or views_cache_dir(cache_dir))
    trainer = Pretrainer(GraphStore.load(cache_dir), run_dir, cfg, views=views)
    trainer.load_state_dict(state)
    metrics = {**trainer.evaluate(), **trainer.majority_baselines()}
    seen = min(int(state["global_step"]) * cfg.batch_size, cfg.epochs * len(trainer.train_idx))
    tensors = {f"encoder.{k}": v for k, v in state["encoder"].items()}
    tensors.update({f"heads.{k}": v for k, v in state["heads"].items()})
    card = {
        "name": name,
        "version": version,
        "description": description,
        "graph": manifest["graph"],
        "encoder": cfg.encoder.to_dict(),
        "element_table": cfg.element_table,
        "element_table_sha256": load_element_table(cfg.element_table).sha256,
        "training": {
            "corpus": Path(manifest["corpus"]).name,
            **({"corpus_description": corpus_description} if corpus_description else {}),
            "corpus_errors": len(manifest["errors"]),
            "n_train": len(trainer.train_idx),
            "n_validation": len(trainer.val_idx),
            **({"n_excluded": trainer.n_excluded} if cfg.excluded_ids_sha256 else {}),
            "validation_split": f"sha1(id) bucket < {cfg.val_fraction:.0%}",
            "objectives": cfg.objectives.to_dict(),
            "optimisation": {k: v for k, v in cfg.to_dict().items() if k not in ("encoder", "objectives")},
            "global_steps": int(state["global_step"]),
            "epochs": last["epoch"],
            "train_seconds": round(float(state["train_seconds"]), 1),
            "structures_per_second": round(seen / float(state["train_seconds"]), 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {cfg.threads or 'default'} torch threads, "
                       f"torch {torch.__version__}",
            **(extra or {}),
        },
        "metrics": metrics,
        "element_counts": trainer.store.element_counts(trainer.train_idx),
    }
    teacher = next((o for o in cfg.objectives.build() if o.needs_teacher), None)
    if teacher is not None:  # a distilled model inherits its teacher's training-label overlap
        from ssl_featurizer.training.teacher import TeacherTargets

        meta = TeacherTargets.read_meta(teacher.params.targets)
        card["label_overlap"] = {**(meta.get("label_overlap") or {"labels": "not stated by the teacher's card"}),
                                 "inherited_from": f"{meta['teacher']} (distillation teacher)"}
    if cfg.init_from is not None:  # a continuation: what it started from, and which pretext heads it reused
        init_name, init_card, init_tensors = initial_weights(cfg)
        card["training"]["init_from"] = {
            # a directory as the run was given it (no absolute path of this machine), a registry name resolved
            "model": cfg.init_from if Path(cfg.init_from).is_dir() else init_name,
            "weights_sha256": init_card["weights"]["sha256"],
            "heads_reused": sorted(matching_heads(trainer.heads, init_tensors)),
            "its_steps": init_card.get("training", {}).get("global_steps")}
    card = save_model(out_dir, tensors, card)
    (Path(out_dir) / "README.md").write_text(render_card(card))
    shutil.copyfile(run_dir / HISTORY, Path(out_dir) / HISTORY)
    if cfg.excluded_ids_sha256:  # the list travels with the model: users can check what it never saw
        shutil.copyfile(run_dir / EXCLUDED, Path(out_dir) / EXCLUDED)
    return card
