"""Invariance check of the default model on real MP structures (writes docs/figures/invariance.json).

Usage (from the repo root): python studies/invariance.py [--n 300]
Takes every 500th structure of ../shared/data/mp2025/structures.jsonl.gz and compares the descriptors
(layers 012345; mean, std, min, max pooling) of each structure with those of a site permutation, a
random rotation, a random translation, and (mean pooling, cells ≤ 40 atoms) a 2×2×2 supercell.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
from common import corpus_rows, corpus_structure, script_parser
from docs_blocks import write_block
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from ssl_featurizer import SSLStructureFeaturizer

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = script_parser(__doc__, corpus=True)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    structures = [corpus_structure(r) for r in itertools.islice(corpus_rows(args.data, every=500), args.n)]
    rng = np.random.default_rng(0)
    f = SSLStructureFeaturizer(layers="012345", pooling=("mean", "std", "min", "max"))
    t0 = time.perf_counter()
    base = f.transform(structures)
    seconds = time.perf_counter() - t0
    variants = {
        "site permutation": [Structure(s.lattice, [s.species[i] for i in p], s.frac_coords[p])
                             for s, p in ((s, rng.permutation(len(s))) for s in structures)],
        "rotation": [Structure(Lattice(s.lattice.matrix @ Rotation.random(random_state=k).as_matrix().T),
                               s.species, s.frac_coords) for k, s in enumerate(structures)],
        "translation": [Structure(s.lattice, s.species, s.frac_coords + rng.random(3)) for s in structures],
    }
    result = {"n_structures": len(structures), "n_features": base.shape[1], "all_finite": bool(np.isfinite(base).all()),
              "seconds_per_structure": seconds / len(structures), "max_abs_feature": float(np.abs(base).max())}
    for name, variant in variants.items():
        result[f"max_abs_diff {name}"] = float(np.abs(f.transform(variant) - base).max())
    small = [i for i, s in enumerate(structures) if len(s) <= 40]
    mean = SSLStructureFeaturizer(layers="012345", pooling=("mean",))
    sup = mean.transform([structures[i] * (2, 2, 2) for i in small])
    result["max_abs_diff 2x2x2 supercell (mean)"] = float(np.abs(sup - base[small, : sup.shape[1]]).max())
    result["n_supercells"] = len(small)
    batch = SSLStructureFeaturizer(layers="012345", pooling=("mean", "std", "min", "max"), batch_size=7)
    result["max_abs_diff batch_size 7 vs 64"] = float(np.abs(batch.transform(structures[::-1])[::-1] - base).max())
    out = ROOT / "docs" / "figures" / "invariance.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    rows = ["| transformation | structures | largest absolute change of any feature |", "|---|---|---|"]
    for name in ("site permutation", "rotation", "translation", "2x2x2 supercell (mean)", "batch_size 7 vs 64"):
        n = result["n_supercells"] if "supercell" in name else result["n_structures"]
        rows.append(f"| {name.replace('2x2x2', '2×2×2')} | {n} | {result['max_abs_diff ' + name]:.1e} |")
    rows.append(f"\nAll {result['n_structures']}×{result['n_features']} values finite; largest feature magnitude "
                f"{result['max_abs_feature']:.1f}; {1000 * result['seconds_per_structure']:.1f} ms per structure end to "
                "end (graph building included) on this 2-core machine.")
    page = ROOT / "docs" / "graph.md"
    write_block(page, "invariance", "\n".join(rows))


if __name__ == "__main__":
    main()
