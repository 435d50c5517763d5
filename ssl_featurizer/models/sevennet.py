"""SevenNet adapters: the frozen equivariant interatomic potentials shipped inside the ``sevenn`` wheel, read as
invariant descriptors.

Layer ``l`` is the invariant part (the ``0e`` channels) of the node features after interaction block ``l``
(after its equivariant gate); layer 0 is the species embedding (the linear map of the one-hot element). SevenNet-0
has 5 blocks, so ``layers="12345"`` concatenates every block and ``layers="5"`` is the last block alone. Graphs are
SevenNet's own (``sevenn.train.dataload.unlabeled_atoms_to_graph``, its 5 Å cutoff); the modules of the model run
in order up to the deepest requested block, in float32 as the package runs them; the readout, energy and force
modules never run. Optional extra: ``pip install 'ssl-featurizer[peer]'``.
"""

from __future__ import annotations

import warnings
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

#: registry name → (checkpoint folder and file inside ``sevenn/pretrained_potentials``, description)
CHECKPOINTS = {
    "sevennet-0": ("SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
                   "SevenNet-0 (11 July 2024): NequIP-style E(3)-equivariant network, lmax 2, 5 interaction blocks"),
    "sevennet-0-22may2024": ("SevenNet_0__22May2024/checkpoint_sevennet_0.pth",
                             "SevenNet-0 (22 May 2024, first release): lmax 2, 5 interaction blocks"),
    "sevennet-l3i5": ("SevenNet_l3i5/checkpoint_l3i5.pth",
                      "SevenNet-l3i5: lmax 3, 5 interaction blocks (more accurate, slower)"),
}
LABEL_OVERLAP = {
    "labels": "DFT (PBE/PBE+U) total energies, forces and stresses of MPtrj (Materials Project relaxation "
              "trajectories, snapshot of 2021)",
    "overlapping_targets": ["formation energy (MP-derived)", "energy above hull", "total energy per atom",
                            "bulk/shear moduli (through stresses of the same calculations)"],
    "note": MPTRJ_OVERLAP_NOTE,
}


def _import() -> Any:
    try:
        import sevenn  # noqa: F401
        from sevenn.util import load_checkpoint
    except ImportError as exc:
        raise MissingExtraError.for_package("SevenNet models", "sevenn", exc) from None
    return load_checkpoint


def available() -> list[str]:
    """The SevenNet names whose checkpoint file is present in the installed ``sevenn`` (none if not installed)."""
    from importlib.util import find_spec

    spec = find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        return []
    from pathlib import Path

    root = Path(next(iter(spec.submodule_search_locations))) / "pretrained_potentials"
    return [name for name, (file, _) in CHECKPOINTS.items() if (root / file).is_file()]


class SevenNetEncoder(ForeignEncoder):
    """A frozen SevenNet checkpoint as an :class:`~ssl_featurizer.models.foreign.Encoder` (see the module)."""

    def __init__(self, name: str, card: dict[str, Any], model: Any, layer_widths: Sequence[int],
                 scalar_columns: list[np.ndarray], cutoff: float, type_map: dict[int, int]):
        super().__init__(name, card, layer_widths, cutoff)
        self.model = model
        self.scalar_columns = scalar_columns
        self.type_map = type_map
        self.blocks = [n for n, _ in model.named_children() if n.endswith("_equivariant_gate")]

    def elements(self) -> Sequence[int]:
        """Atomic numbers in the checkpoint's type map."""
        return list(self.type_map)

    def graph(self, structure: Any) -> tuple[Any, int]:
        """SevenNet's own graph of ``structure`` (its neighbour list within the cutoff) and its edge count."""
        from pymatgen.io.ase import AseAtomsAdaptor
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        g = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(AseAtomsAdaptor.get_atoms(structure),
                                                                   self.cutoff))
        return g, int(g["edge_index"].shape[1])

    def forward(self, graphs: list[Any], upto: int) -> list[np.ndarray]:
        """Run the model's modules in order up to the gate of block ``upto``; return layers 0..upto."""
        import torch
        from torch_geometric.data import Batch

        data = Batch.from_data_list(graphs)
        data["x"] = self.model.z_to_onehot_tensor[data["atomic_numbers"]]
        out: list[np.ndarray] = []
        last = "onehot_to_feature_x" if upto == 0 else self.blocks[upto - 1]
        with torch.no_grad():
            for name, module in self.model.named_children():
                data = module(data)
                if name == "onehot_to_feature_x" or name in self.blocks:
                    x = data["x"].numpy()
                    out.append(x[:, self.scalar_columns[len(out)]])
                if name == last:
                    break
        return out


def load_sevennet(name: str) -> SevenNetEncoder:
    """Load a SevenNet checkpoint shipped inside the installed ``sevenn`` wheel (see :data:`CHECKPOINTS`).

    Raises:
        MissingExtraError: ``sevenn`` is not installed.
        ModelError: the checkpoint is not in the installed wheel.
    """
    from pathlib import Path

    from ssl_featurizer.models.loaded import ModelError

    load_checkpoint = _import()
    import sevenn

    file, description = CHECKPOINTS[name]
    path = Path(sevenn.__file__).parent / "pretrained_potentials" / file
    if not path.is_file():
        raise ModelError(f"model {name}: {file} is not in the installed sevenn {package_version('sevenn')}")
    digest = file_sha256(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no tensor-product accelerator" notices
        checkpoint = load_checkpoint(str(path))
        model = checkpoint.build_model()
    model.eval().requires_grad_(False)
    model.set_is_batch_data(True)
    config = checkpoint.config
    from e3nn.o3 import Irreps

    blocks = [n for n, _ in model.named_children() if n.endswith("_equivariant_gate")]
    # the irreps of the node features after layer l are the input irreps of the module that reads them next
    readers = ["0_self_interaction_1", *(f"{k}_self_interaction_1" for k in range(1, len(blocks))),
               "reduce_input_to_hidden"]
    columns, widths = [], []
    for reader in readers:
        irreps = Irreps(model.get_irreps_in(reader))
        cols = [np.arange(s.start, s.stop) for (mul, ir), s in zip(irreps, irreps.slices()) if ir.l == 0 and ir.p == 1]
        columns.append(np.concatenate(cols))
        widths.append(len(columns[-1]))
    card = {
        "name": name, "kind": "foreign", "package": "sevenn", "package_version": package_version("sevenn"),
        "description": description,
        "architecture": {"blocks": len(blocks), "lmax": config.get("lmax"), "channel": config.get("channel"),
                         "cutoff": float(config["cutoff"]), "layers": "0: species embedding; l: 0e channels after "
                                                                      "interaction block l", "dtype": "float32"},
        "training": {"kind": "supervised", "data": "MPtrj (Materials Project relaxation trajectories, ~1.6M "
                                                   "snapshots of ~146k materials)",
                     "targets": "energies, forces, stresses", "checkpoint_version": config.get("version")},
        "licence": f"{package_licence('sevenn')} (sevenn package metadata; the weights ship inside the wheel)",
        "reference": "Park et al., J. Chem. Theory Comput. 20, 4857 (2024), doi:10.1021/acs.jctc.4c00190",
        "weights": {"file": f"sevenn/pretrained_potentials/{file}", "sha256": digest, "bytes": path.stat().st_size},
        "label_overlap": LABEL_OVERLAP,
        "elements": len(config["_type_map"]),
    }
    return SevenNetEncoder(name, card, model, widths, columns, float(config["cutoff"]),
                           {int(z): int(i) for z, i in config["_type_map"].items()})
