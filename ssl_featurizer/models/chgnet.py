"""CHGNet adapter: the frozen universal potential shipped inside the ``chgnet`` wheel, read layer by layer.

Layer 0 is CHGNet's atom (species) embedding; layer ``l`` is the atom features after atom-convolution block ``l``
(CHGNet 0.3.0 has 4, so ``layers="01234"`` is every block and ``"4"`` the last alone, taken before CHGNet's
readout layer norm). Its layer 3 is the package's own ``atom_fea`` output. Graphs are CHGNet's own
(``model.graph_converter``: 5 Å atom graph, 3 Å bond graph); batches run through ``CHGNet.forward`` (energy task,
no gradients) with forward hooks on the embedding and the atom-convolution layers, in float32 as the package runs
them. Optional extra: ``pip install 'ssl-featurizer[peer]'``.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssl_featurizer.models.foreign import (
    MPTRJ_OVERLAP_NOTE,
    ForeignEncoder,
    MissingExtraError,
    file_sha256,
    package_licence,
    package_version,
)

#: registry name → CHGNet's ``model_name`` (its weights file ships inside the wheel)
CHECKPOINTS = {"chgnet": "0.3.0"}
LABEL_OVERLAP = {
    "labels": "DFT (GGA/GGA+U) energies, forces, stresses and magnetic moments of MPtrj (Materials Project "
              "relaxation trajectories, snapshot of 2021)",
    "overlapping_targets": ["formation energy (MP-derived)", "energy above hull", "total energy per atom",
                            "magnetic moments", "bulk/shear moduli (through stresses of the same calculations)"],
    "note": MPTRJ_OVERLAP_NOTE,
}


def _import() -> Any:
    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise MissingExtraError.for_package("CHGNet", "chgnet", exc) from None
    return CHGNet


def available() -> list[str]:
    """``["chgnet"]`` when the ``chgnet`` package is installed, else ``[]``."""
    from importlib.util import find_spec

    return list(CHECKPOINTS) if find_spec("chgnet") is not None else []


class CHGNetEncoder(ForeignEncoder):
    """A frozen CHGNet as an :class:`~ssl_featurizer.models.foreign.Encoder` (see the module)."""

    def __init__(self, name: str, card: dict[str, Any], model: Any, layer_widths: Sequence[int], cutoff: float):
        super().__init__(name, card, layer_widths, cutoff)
        self.model = model
        self._captured: list[Any] = []
        self._lock = threading.Lock()  # the hooks write into this object: one forward pass at a time
        model.atom_embedding.register_forward_hook(self._capture)
        for layer in model.atom_conv_layers:
            layer.register_forward_hook(self._capture)

    def _capture(self, module: Any, inputs: Any, output: Any) -> None:
        self._captured.append(output)

    def elements(self) -> Sequence[int]:
        """Atomic numbers of CHGNet's embedding table (1..94)."""
        return range(1, self.model.atom_embedding.embedding.num_embeddings + 1)

    def graph(self, structure: Any) -> tuple[Any, int]:
        """CHGNet's graph of ``structure`` (raises for isolated atoms) and its number of directed edges."""
        with contextlib.redirect_stdout(io.StringIO()):
            g = self.model.graph_converter(structure)
        return g, int(g.atom_graph.shape[0])

    def forward(self, graphs: list[Any], upto: int) -> list[np.ndarray]:
        """Layers 0..``upto`` of a batch (the whole network runs; the hooks keep the atom features)."""
        import torch

        with self._lock, torch.no_grad():
            self._captured = []
            self.model.forward(graphs, task="e")
            captured, self._captured = self._captured, []
        if len(captured) != self.n_layers + 1:
            raise RuntimeError(f"captured {len(captured)} atom-feature tensors, expected {self.n_layers + 1}")
        return [t.numpy() for t in captured[:upto + 1]]


def load_chgnet(name: str = "chgnet") -> CHGNetEncoder:
    """Load the CHGNet shipped inside the installed ``chgnet`` package (on the CPU).

    Raises:
        MissingExtraError: ``chgnet`` is not installed.
    """
    from pathlib import Path

    from ssl_featurizer.models.loaded import ModelError

    model_cls = _import()
    import chgnet

    version = CHECKPOINTS[name]
    folder = Path(chgnet.__file__).parent / "pretrained" / version
    files = sorted(folder.glob("*.pth.tar"))
    if len(files) != 1:
        raise ModelError(f"model {name}: expected one weights file in chgnet/pretrained/{version}, found {len(files)}")
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its version and device on load
        model = model_cls.load(model_name=version, use_device="cpu", verbose=False)
    model.eval().requires_grad_(False)
    width = int(model.atom_embedding.embedding.embedding_dim)
    n_blocks = len(model.atom_conv_layers)
    cutoff = float(model.graph_converter.atom_graph_cutoff)
    card = {
        "name": name, "kind": "foreign", "package": "chgnet", "package_version": package_version("chgnet"),
        "description": f"CHGNet {version}: crystal Hamiltonian graph network with atom, bond and angle updates, "
                       f"{n_blocks} atom-convolution blocks",
        "architecture": {"blocks": n_blocks, "width": width, "cutoff": cutoff,
                         "layers": "0: atom embedding; l: atom features after atom-convolution block l (before "
                                   "the readout norm)", "dtype": "float32"},
        "training": {"kind": "supervised", "data": "MPtrj (Materials Project relaxation trajectories, ~1.58M "
                                                   "snapshots of ~146k materials)",
                     "targets": "energies, forces, stresses, magnetic moments", "checkpoint_version": version},
        "licence": f"{package_licence('chgnet')} (chgnet package metadata; the weights ship inside the wheel)",
        "reference": "Deng et al., Nat. Mach. Intell. 5, 1031 (2023), doi:10.1038/s42256-023-00716-3",
        "weights": {"file": f"chgnet/pretrained/{version}/{files[0].name}", "sha256": file_sha256(files[0]),
                    "bytes": files[0].stat().st_size},
        "label_overlap": LABEL_OVERLAP,
        "elements": int(model.atom_embedding.embedding.num_embeddings),
    }
    return CHGNetEncoder(name, card, model, [width] * (n_blocks + 1), cutoff)
