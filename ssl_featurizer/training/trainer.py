"""Self-supervised pretraining loop: seeded, checkpointed, exactly resumable, optionally data-parallel.

Everything random is derived from ``seed`` and the position in training (epoch, step), never from
global RNG state, so a run interrupted and resumed from a checkpoint continues exactly as an
uninterrupted run would.

Under ``torchrun`` (a process group is initialised, see :mod:`ssl_featurizer.training.distributed`)
the model is wrapped in ``DistributedDataParallel``: each step's global batch is split into one
shard per rank, masks are drawn for the whole global batch, the loss is normalised by global counts
and BatchNorm uses global-batch statistics, so the run means the same as a single-process one.
Rank 0 alone writes checkpoints and the history; evaluation is shared out by chunks.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
from ssl_featurizer.graph.elements import load_element_table
from ssl_featurizer.training import distributed as ddp
from ssl_featurizer.training.cache import GraphStore
from ssl_featurizer.training.objectives import Objective, ObjectivesConfig, Resources, Step, mask_atoms

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.csv"
EXCLUDED = "excluded_ids.txt"  # corpus ids a run leaves out (one per line), kept in the run directory
_VAL_EPOCH = 10**6  # rng stream for validation masks, distinct from every training epoch


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated or does not match its recorded sha256."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of a pretraining run."""

    epochs: int = 1
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup_steps: int = 200
    val_fraction: float = 0.025
    seed: int = 0
    checkpoint_every: int = 200
    eval_every: int = 400
    max_steps: int | None = None  # stop early (for tests and smoke runs); the schedule still spans all epochs
    threads: int | None = None
    element_table: str = "v1"  # node input table (ssl_featurizer.graph.elements); its width is the encoder's input
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    objectives: ObjectivesConfig = field(default_factory=ObjectivesConfig)
    # sha256 of the corpus ids left out of training and validation (see ids_digest); the ids themselves live in
    # the run directory's excluded_ids.txt, e.g. every structure of the benchmark tasks for an inductive control
    excluded_ids_sha256: str | None = None
    # a continuation: the shipped model (or model directory) whose encoder, and pretext heads of the same
    # objectives, the run starts from instead of a random initialisation, and the sha256 of its weights file
    init_from: str | None = None
    init_weights_sha256: str | None = None

    def to_dict(self) -> dict:
        """Plain-dict form for JSON."""
        d = {k: v for k, v in asdict(self).items() if k != "objectives"}
        return {**d, "objectives": self.objectives.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict` (also reads configs written before the objectives package, key ``tasks``)."""
        d = dict(d)
        d["encoder"] = EncoderConfig(**d["encoder"])
        d["objectives"] = ObjectivesConfig.from_dict(d.pop("objectives") if "objectives" in d else d.pop("tasks"))
        return cls(**d)


def ids_digest(ids) -> str:
    """sha256 of a set of ids (sorted, one per line): what :attr:`TrainConfig.excluded_ids_sha256` records."""
    return hashlib.sha256("\n".join(sorted(set(map(str, ids)))).encode()).hexdigest()


def read_ids(path: str | Path) -> list[str]:
    """Ids listed one per line (blank lines and ``#`` comments ignored)."""
    lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def split_indices(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/validation split by a hash of each id (independent of corpus order)."""
    buckets = np.array([int(hashlib.sha1(str(i).encode()).hexdigest()[:8], 16) % 10000 for i in ids])
    val = buckets < round(val_fraction * 10000)
    return np.flatnonzero(~val), np.flatnonzero(val)


def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write ``path`` and its ``.sha256`` so that a kill at any point leaves a loadable pair.

    The two files cannot be replaced in one atomic step, so the new digest is written first (as
    ``<name>.sha256.tmp``), then the checkpoint is renamed into place, then the digest: a process killed between
    the two renames leaves the new checkpoint with its digest still pending, which :func:`load_checkpoint` accepts.
    """
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    digest_file = path.with_name(path.name + ".sha256")
    pending = path.with_name(path.name + ".sha256.tmp")
    tmp = path.with_suffix(".tmp")
    for target, payload in ((tmp, data), (pending, hashlib.sha256(data).hexdigest().encode())):
        with target.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    os.replace(pending, digest_file)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint after verifying its sha256 (tensors and plain data only, no pickle code).

    The digest is the ``.sha256`` file's, or, after a kill between the two renames of :func:`_save_checkpoint`,
    the pending ``.sha256.tmp`` one.
    """
    path = Path(path)
    digest_file = path.with_name(path.name + ".sha256")
    pending = path.with_name(path.name + ".sha256.tmp")
    if not path.exists() or not (digest_file.exists() or pending.exists()):
        raise CheckpointError(f"checkpoint {path} or its .sha256 file is missing")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    recorded = [f.read_text().strip() for f in (digest_file, pending) if f.exists()]
    if digest not in recorded:
        raise CheckpointError(f"checkpoint {path} is corrupted: sha256 does not match {digest_file.name}")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


class PretextModel(torch.nn.Module):
    """Encoder + the objectives' heads and losses as one module, the unit ``DistributedDataParallel`` wraps.

    Shapes:
        - input: a :class:`~ssl_featurizer.training.objectives.Step` of ``N`` atoms and ``E`` edges
        - output: ``{"loss": scalar, "<part>_loss" / "_correct" / "_count": scalars}`` of every objective part
    """

    def __init__(self, encoder: CrystalEncoder, objectives: list[Objective]):
        super().__init__()
        self.encoder, self.objectives = encoder, objectives
        self.heads = torch.nn.ModuleDict({o.name: o.make_head(encoder.config.width) for o in objectives})

    def forward(self, step: Step) -> dict[str, torch.Tensor]:
        # the encoder sees the (possibly perturbed) encoder_distance; targets are computed from the clean inputs
        step.h = self.encoder(step.x, step.edge_index, step.encoder_distance, vectors=step.encoder_vector)[-1]
        out: dict[str, torch.Tensor] = {"loss": step.h.new_zeros(())}
        for objective in self.objectives:
            part = objective.loss(self.heads[objective.name], step, self.encoder)
            out = {**out, **part, "loss": out["loss"] + part["loss"]}
        return out


# head names of checkpoints written before the objectives package (version 2): old prefix -> objective
_LEGACY_HEADS = {"atom.": "masked_atoms.", "edge.": "edge_bins.", "project.": "contrastive.", "denoise.": "denoise."}


def _renamed_heads(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        old = next((o for o in _LEGACY_HEADS if key.startswith(o)), None)
        out[key if old is None else _LEGACY_HEADS[old] + key[len(old):]] = value
    return out


def matching_heads(heads: torch.nn.ModuleDict, tensors: dict[str, torch.Tensor]) -> dict[str, dict]:
    """The pretext heads of ``heads`` that a model's tensors hold with the same keys and shapes (``heads.<name>.*``,
    older head names translated), as state dicts by objective name: what a continuation reuses."""
    stored = _renamed_heads({k[len("heads."):]: v for k, v in tensors.items() if k.startswith("heads.")})
    found = {}
    for name, head in heads.items():
        own = head.state_dict()
        state = {k[len(name) + 1:]: v for k, v in stored.items() if k.startswith(f"{name}.")}
        if state.keys() == own.keys() and all(state[k].shape == own[k].shape for k in own):
            found[name] = state
    return found


def initial_weights(config: TrainConfig) -> tuple[str, dict, dict[str, torch.Tensor]]:
    """``(name, card, tensors)`` of the model a continuation starts from (:attr:`TrainConfig.init_from`), checked
    against the run's encoder, element table and recorded weights digest.

    Raises:
        ValueError: no ``init_from``, or a model whose encoder, element table or weights differ from the run's.
    """
    from ssl_featurizer.models.registry import read_weights

    if config.init_from is None:
        raise ValueError("the run has no init_from model")
    name, card, tensors = read_weights(config.init_from)
    if config.init_weights_sha256 not in (None, card["weights"]["sha256"]):
        raise ValueError(f"init_from {config.init_from}: its weights (sha256 {card['weights']['sha256'][:12]}…) "
                         f"are not the ones this run started from ({config.init_weights_sha256[:12]}…)")
    theirs = EncoderConfig(**card["encoder"])
    if theirs != config.encoder:
        raise ValueError(f"init_from {config.init_from}: its encoder {theirs.to_dict()} differs from the run's "
                         f"{config.encoder.to_dict()} (pass the same --width, --depth, --angular-channels)")
    if card.get("element_table", "v1") != config.element_table:
        raise ValueError(f"init_from {config.init_from}: it reads element table {card.get('element_table', 'v1')!r}, "
                         f"the run {config.element_table!r} (pass --element-table "
                         f"{card.get('element_table', 'v1')})")
    return name, card, tensors


class Pretrainer:
    """Runs (or resumes) one pretraining run over a :class:`GraphStore` (data-parallel under ``torchrun``)."""

    def __init__(self, store: GraphStore, out_dir: str | Path, config: TrainConfig,
                 views: GraphStore | None = None):
        self.store, self.out_dir, self.cfg = store, Path(out_dir), config
        self.rank, self.world_size = ddp.world()
        self.objectives = config.objectives.build()
        for o in self.objectives:
            if o.needs_views and views is None:
                raise ValueError(f"the {o.name} objective needs the supercell view cache (views=...)")
            if o.single_process and self.world_size > 1:
                raise ValueError(f"the {o.name} objective runs in one process (its negatives are the whole batch); "
                                 "run it without torchrun")
            if o.needs_vectors and store.vec is None:
                raise ValueError(f"the {o.name} objective needs a graph cache with edge vectors "
                                 "(build_graph_cache(..., vectors=True))")
        if config.encoder.angular_channels and (store.vec is None or (views is not None and views.vec is None)):
            raise ValueError("an encoder with bond-angle moments (angular_channels > 0) needs graph caches with edge "
                             "vectors (build_graph_cache(..., vectors=True))")
        self.views = views if any(o.needs_views for o in self.objectives) else None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        table = load_element_table(config.element_table)
        if table.n_features != config.encoder.n_node_features:
            raise ValueError(f"element table {config.element_table!r} has {table.n_features} columns but the "
                             f"encoder expects n_node_features={config.encoder.n_node_features}")
        self.table = torch.from_numpy(table.features)
        self.group = torch.from_numpy(table.group(np.arange(len(table.features))))
        self.period = torch.from_numpy(table.period(np.arange(len(table.features))))
        torch.manual_seed(config.seed)
        self.encoder = CrystalEncoder(config.encoder)
        self.model = PretextModel(self.encoder, self.objectives)
        self.heads = self.model.heads
        self.objective: torch.nn.Module = self.model
        if self.world_size > 1:
            import torch.distributed as dist
            from torch.nn.parallel import DistributedDataParallel

            # BatchNorm statistics travel on their own group, apart from DDP's gradient buckets
            ddp.GlobalBatchNorm1d.convert(self.encoder, dist.new_group(backend="gloo"))
            self.objective = DistributedDataParallel(self.model, broadcast_buffers=False)
        params = list(self.encoder.parameters()) + list(self.heads.parameters())
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.train_idx, self.val_idx = split_indices(store.ids, config.val_fraction)
        self.n_excluded = 0
        if config.excluded_ids_sha256 is not None:
            keep = ~np.isin(np.asarray(store.ids, dtype=str), self._excluded_ids())
            self.n_excluded = int((~keep).sum())
            self.train_idx, self.val_idx = self.train_idx[keep[self.train_idx]], self.val_idx[keep[self.val_idx]]
        self.view_of = None
        if self.views is not None:
            position = {i: k for k, i in enumerate(self.views.ids)}
            self.view_of = np.array([position.get(i, -1) for i in store.ids])
            self.train_idx = self.train_idx[self.view_of[self.train_idx] >= 0]
            self.val_idx = self.val_idx[self.view_of[self.val_idx] >= 0]
        teacher = None
        for objective in self.objectives:
            if objective.needs_teacher:  # only structures with teacher targets (atom for atom) are trained on
                from ssl_featurizer.training.teacher import TeacherTargets

                targets = TeacherTargets.load(objective.params.targets)
                index = targets.align(store.ids, store.n_atoms(np.arange(len(store))))
                self.train_idx = self.train_idx[index[self.train_idx] >= 0]
                self.val_idx = self.val_idx[index[self.val_idx] >= 0]
                if not len(self.train_idx):
                    raise ValueError(f"no structure of the graph cache has targets in {objective.params.targets}")
                teacher = (targets, index)
        self.resources = Resources(self.table, self.views, self.view_of, config.objectives.mask_fraction, teacher)
        self.steps_per_epoch = math.ceil(len(self.train_idx) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.global_step = 0
        self.train_seconds = 0.0

    def _excluded_ids(self) -> np.ndarray:
        """The run's excluded ids, checked against the digest in the config (ValueError if absent or other)."""
        path = self.out_dir / EXCLUDED
        if not path.exists():
            raise ValueError(f"the config leaves out corpus ids (sha256 {self.cfg.excluded_ids_sha256[:12]}…) but "
                             f"{path} is missing")
        ids = read_ids(path)
        if ids_digest(ids) != self.cfg.excluded_ids_sha256:
            raise ValueError(f"{path} does not hold the ids the config was written for (sha256 differs)")
        return np.asarray(ids, dtype=str)

    # -- one batch ---------------------------------------------------------------------------
    def collate(self, indices: np.ndarray, rng: np.random.Generator, shard: bool = False) -> Step:
        """One batch as the model's input: graphs, masks and the objectives' random draws (in their fixed order).

        With ``shard``, this rank's share of the global batch ``indices`` (masks are drawn for the global batch).
        """
        n_atoms = self.store.n_atoms(indices)
        masked_all = mask_atoms(np.repeat(np.arange(len(indices)), n_atoms), self.cfg.objectives.mask_fraction, rng)
        parallel = shard and self.world_size > 1
        mine = np.array_split(np.arange(len(indices)), self.world_size)[self.rank] if parallel else \
            np.arange(len(indices))
        atom_ptr = np.concatenate(([0], np.cumsum(n_atoms)))
        atoms = slice(atom_ptr[mine[0]], atom_ptr[mine[-1] + 1]) if len(mine) else slice(0, 0)
        b = self.store.batch(indices[mine])
        masked = torch.from_numpy(masked_all[atoms])
        normalizers = None
        if parallel:
            touched = masked[b.edge_index[0]] | masked[b.edge_index[1]]
            counts = ddp.all_reduce_sum(torch.tensor([float(masked.sum()), float(touched.sum()),
                                                      float(b.edge_index.shape[1]), float(b.z.numel())],
                                                     dtype=torch.float64))
            # each rank's summed loss over global count / world size: DDP's gradient average is the global mean
            normalizers = {name: max(float(c), 1.0) / self.world_size
                           for name, c in zip(("atom", "edge", "all_edges", "all_atoms"), counts)}
        step = Step(indices=indices[mine], x=self.table[b.z].masked_fill(masked[:, None], 0.0), z=b.z, masked=masked,
                    edge_index=b.edge_index, distance=b.distance, encoder_distance=b.distance,
                    group=self.group[b.z], period=self.period[b.z], batch=b.batch, n_graphs=len(mine),
                    vector=b.vector, encoder_vector=b.vector, global_atoms=atoms, n_global_atoms=int(atom_ptr[-1]),
                    normalizers=normalizers)
        for objective in self.objectives:  # random draws in the objectives' fixed order
            objective.prepare(step, rng, self.resources)
        return step

    def _forward(self, indices: np.ndarray, rng: np.random.Generator, shard: bool = False) -> dict:
        """Losses of one batch; with ``shard``, of this rank's share of the global batch ``indices``."""
        step = self.collate(indices, rng, shard)
        return (self.objective if shard and self.world_size > 1 else self.model)(step)

    def _val_chunks(self, shard: bool = False):
        """Held-out structures in fixed chunks, each with the generator of its fixed masks.

        With ``shard``, only this rank's chunks (chunk k goes to rank k mod world size).
        """
        for k, start in enumerate(range(0, len(self.val_idx), 256)):
            if shard and k % self.world_size != self.rank:
                continue
            yield self.val_idx[start:start + 256], np.random.default_rng([self.cfg.seed, _VAL_EPOCH, k])

    def _metric_keys(self) -> list[str]:
        parts = [part for o in self.objectives for part in o.parts]
        return ["loss"] + [f"{part}_{kind}" for part in parts for kind in ("loss", "correct", "count")]

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Objective losses and accuracies on the held-out split (fixed draws; chunks shared out over ranks)."""
        self.model.eval()
        keys = self._metric_keys()
        sums = torch.zeros(len(keys), dtype=torch.float64)
        for idx, rng in self._val_chunks(shard=True):
            out = self._forward(idx, rng)
            for i, key in enumerate(keys):
                weight = 1.0 if key.endswith(("_correct", "_count")) else len(idx)
                sums[i] += float(out[key]) * weight
        sums = dict(zip(keys, ddp.all_reduce_sum(sums).tolist()))
        self.model.train()
        result = {"val_loss": sums["loss"] / len(self.val_idx)}
        for key in list(sums):
            if key.endswith("_correct"):
                part = key[: -len("_correct")]
                result[f"val_{part}_acc"] = sums[key] / sums[f"{part}_count"]
                result[f"val_{part}_loss"] = sums[f"{part}_loss"] / len(self.val_idx)
        return result

    def majority_baselines(self) -> dict[str, float]:
        """Accuracy of always predicting the most frequent class, on the same held-out masked atoms."""
        counts: dict[str, np.ndarray] = {"group": np.zeros(18), "period": np.zeros(7), "element": np.zeros(101)}
        for idx, rng in self._val_chunks():
            b = self.store.batch(idx)
            masked = mask_atoms(b.batch.numpy(), self.cfg.objectives.mask_fraction, rng)
            z = b.z.numpy()[masked]
            counts["group"] += np.bincount(self.group.numpy()[z], minlength=18)
            counts["period"] += np.bincount(self.period.numpy()[z], minlength=7)
            counts["element"] += np.bincount(z, minlength=101)
        return {f"baseline_{k}_acc": float(v.max() / v.sum()) for k, v in counts.items()}

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to resume."""
        return {"encoder": self.encoder.state_dict(), "heads": self.heads.state_dict(),
                "optimizer": self.optimizer.state_dict(), "global_step": self.global_step,
                "train_seconds": self.train_seconds, "config": json.dumps(self.cfg.to_dict()),
                "data_fingerprint": self.store.fingerprint}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; refuses a checkpoint of another config or corpus."""
        run_control = ("max_steps", "threads", "checkpoint_every", "eval_every")

        def comparable(cfg: TrainConfig) -> dict:
            return {k: v for k, v in json.loads(json.dumps(cfg.to_dict())).items() if k not in run_control}

        if comparable(TrainConfig.from_dict(json.loads(state["config"]))) != comparable(self.cfg):
            raise CheckpointError("checkpoint was written with a different training config")
        if state["data_fingerprint"] != self.store.fingerprint:
            raise CheckpointError("checkpoint was written for a different graph cache")
        heads = _renamed_heads(state["heads"])
        if set(heads) != set(self.heads.state_dict()):
            raise CheckpointError("checkpoint holds other prediction heads than this run's objectives")
        self.encoder.load_state_dict(state["encoder"])
        self.heads.load_state_dict(heads)
        self.optimizer.load_state_dict(state["optimizer"])
        self.global_step = int(state["global_step"])
        self.train_seconds = float(state["train_seconds"])

    def _start_from_model(self) -> None:
        """Load :attr:`TrainConfig.init_from`'s encoder and the heads it has for this run's objectives (the
        others keep their random initialisation)."""
        _, _, tensors = initial_weights(self.cfg)
        self.encoder.load_state_dict({k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")})
        for name, state in matching_heads(self.heads, tensors).items():
            self.heads[name].load_state_dict(state)

    def _truncate_history(self) -> None:
        """Drop history rows logged after the checkpoint we resume from (they will be redone)."""
        path = self.out_dir / HISTORY
        if not path.exists():
            return
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        kept = [r for r in rows if int(r["step"]) <= self.global_step]
        path.unlink()
        for row in kept:
            self._log(row)

    def _log(self, row: dict) -> None:
        path = self.out_dir / HISTORY
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    # -- the loop ----------------------------------------------------------------------------
    def train(self, resume: bool = False, progress: bool = True) -> dict[str, float]:
        """Train to the end (or to ``max_steps``), checkpointing as configured.

        Returns:
            The final validation metrics.
        """
        from tqdm.auto import tqdm

        if self.cfg.threads:
            torch.set_num_threads(self.cfg.threads)
        ckpt = self.out_dir / CHECKPOINT
        lead = self.rank == 0
        if resume and ckpt.exists():
            self.load_state_dict(load_checkpoint(ckpt))
            if lead:
                self._truncate_history()
        else:
            if self.cfg.init_from is not None:  # a continuation: every rank starts from the same weights
                self._start_from_model()
            if lead and (self.out_dir / HISTORY).exists():
                (self.out_dir / HISTORY).unlink()
        ddp.barrier()  # no rank may write before the others have read the checkpoint
        stop = min(self.total_steps, self.cfg.max_steps or self.total_steps)
        bar = tqdm(total=stop, initial=self.global_step, desc="pretrain", disable=not (progress and lead))
        running = []
        while self.global_step < stop:
            epoch, step = divmod(self.global_step, self.steps_per_epoch)
            order = np.random.default_rng([self.cfg.seed, epoch]).permutation(self.train_idx)
            idx = order[step * self.cfg.batch_size:(step + 1) * self.cfg.batch_size]
            t0 = time.perf_counter()
            for group in self.optimizer.param_groups:
                group["lr"] = _lr_at(self.global_step, self.total_steps, self.cfg)
            out = self._forward(idx, np.random.default_rng([self.cfg.seed, epoch, step]), shard=True)
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            self.optimizer.step()
            self.train_seconds += time.perf_counter() - t0
            self.global_step += 1
            # the global batch's loss: the ranks' normalised losses add up to world size × it
            running.append(float(ddp.all_reduce_sum(out["loss"].detach())) / self.world_size)
            bar.update()
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}", epoch=epoch)
            end_of_epoch = self.global_step % self.steps_per_epoch == 0
            if self.global_step % self.cfg.eval_every == 0 or end_of_epoch or self.global_step == stop:
                metrics = self.evaluate()
                if lead:
                    self._log({"step": self.global_step, "epoch": self.global_step / self.steps_per_epoch,
                               "train_loss": float(np.mean(running)) if running else float("nan"),
                               "lr": self.optimizer.param_groups[0]["lr"], "train_seconds": self.train_seconds,
                               **metrics})
                running = []
            if lead and (self.global_step % self.cfg.checkpoint_every == 0 or end_of_epoch
                         or self.global_step == stop):
                _save_checkpoint(ckpt, self.state_dict())
        bar.close()
        return self.evaluate()
