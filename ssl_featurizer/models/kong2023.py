"""Compatibility preset ``kong2023``: load Kong et al.'s released checkpoints from a user-given path.

Their weights are never shipped here (their repository has no license); point ``model=`` at your copy::

    SSLStructureFeaturizer(model="kong2023:/path/to/cgcnn_60k_pred.pth")

``atom_init.json`` (CGCNN's 92-column element table) must sit in the same folder. Their conventions are
reproduced exactly: 92-column node features, the 12 nearest neighbours within 8 Å with padding edges
from node 0 at 9 Å, 41 Gaussians, every edge used in both directions (the direction their weights
match: masked-group accuracy ~0.95 both ways versus ~0.55 one way), the ``gnn.`` key prefix of the
contrastive file, and the obsolete ``convs.k.bn.*`` keys (dropped).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from ssl_featurizer.encoder.model import CrystalEncoder, EncoderConfig
from ssl_featurizer.graph.crystal_graph import GraphConfig
from ssl_featurizer.graph.elements import MAX_Z
from ssl_featurizer.models.loaded import ModelError, PretrainedModel, for_inference

PREFIX = "kong2023:"
GRAPH = GraphConfig(cutoff=8.0, max_neighbors=12, neighbor_mode="kong2023", pad_distance=9.0)
ENCODER = EncoderConfig(n_node_features=92, width=64, n_layers=5, message_direction="both")


def _read(path: Path) -> tuple[dict, str]:
    blob = path.read_bytes()
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True), hashlib.sha256(blob).hexdigest()


def encoder_state(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The encoder tensors of either released file, renamed to :class:`CrystalEncoder`'s keys."""
    state = checkpoint["model_state_dict"]
    out = {}
    for key, value in state.items():
        key = key.removeprefix("gnn.")
        if key.startswith("convs.") and ".bn." in key:
            continue  # obsolete PyG CGConv batch norm, unused by the forward pass
        if key.split(".")[0] in ("embedding1", "embedding2", "convs", "batch_norm"):
            out[key] = value
    return out


def atom_table(path: Path) -> torch.Tensor:
    """``(MAX_Z + 1, 92)`` node-feature matrix from ``atom_init.json`` (row 0 and missing rows zero)."""
    data = json.loads(path.read_text())
    table = np.zeros((MAX_Z + 1, 92), dtype=np.float32)
    for z, row in data.items():
        if int(z) <= MAX_Z:
            table[int(z)] = row
    return torch.from_numpy(table)


def load_kong2023(spec: str) -> PretrainedModel:
    """Load ``"kong2023:<path to .pth>"`` as a :class:`~ssl_featurizer.models.loaded.PretrainedModel`."""
    path = Path(spec[len(PREFIX):]).expanduser()
    atom_init = path.with_name("atom_init.json")
    if not path.is_file() or not atom_init.is_file():
        raise ModelError(f"{spec!r}: need the .pth file and atom_init.json beside it (not found)")
    try:
        checkpoint, digest = _read(path)
        encoder = CrystalEncoder(ENCODER)
        encoder.load_state_dict(encoder_state(checkpoint))
    except (RuntimeError, KeyError, OSError, ValueError) as exc:
        raise ModelError(f"{spec!r} is not a Kong et al. checkpoint: {exc}") from exc
    card = {"name": f"kong2023-{path.stem}", "version": "released", "graph": GRAPH.to_dict(),
            "encoder": ENCODER.to_dict(), "weights": {"file": path.name, "sha256": digest},
            "training": {"corpus": "~69k Materials Project structures (Kong et al.)", "epochs": float("nan")},
            "metrics": {}}
    return PretrainedModel(f"{PREFIX}{path}", card, *for_inference(encoder, atom_table(atom_init)))


def atom_head(path: str | Path) -> torch.nn.Linear:
    """The predictive checkpoint's masked-atom head (Linear 64 → 92: group logits 0–18, period 19–27)."""
    checkpoint, _ = _read(Path(path))
    head = torch.nn.Linear(64, 92)
    head.load_state_dict(checkpoint["linear_pred_atoms_state_dict"])
    return head.eval()
