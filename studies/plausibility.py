"""How far apart atoms are in real crystals: the measurement behind the unit-mistake warning.

For every ``--every``-th structure of ``../shared/data/mp2025/structures.jsonl.gz`` the crystal graph is built and,
for each atom, its nearest-neighbour distance is divided by the sum of the two atoms' atomic radii
(:func:`ssl_featurizer.graph.crystal_graph.neighbor_ratios`). Per structure the smallest ratio (two atoms too
close: a lattice in nm) and the median ratio (atoms too far apart: a lattice in bohr) are kept; their quantiles
over the corpus sample are written into the ``plausibility`` block of docs/reliability.md, beside the thresholds
the package uses (:data:`~ssl_featurizer.graph.crystal_graph.MIN_NEIGHBOR_RATIO`,
:data:`~ssl_featurizer.graph.crystal_graph.MAX_MEDIAN_NEIGHBOR_RATIO`).

Usage (from the repo root): OMP_NUM_THREADS=1 python studies/plausibility.py [--every 7] [--docs]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import corpus_rows, corpus_structure, script_parser
from docs_blocks import write_block
from project_tasks import corpus_file

ROOT = Path(__file__).resolve().parents[1]
CORPUS = corpus_file()


def main() -> None:
    from ssl_featurizer.graph.crystal_graph import (
        MAX_MEDIAN_NEIGHBOR_RATIO,
        MIN_NEIGHBOR_RATIO,
        StructureError,
        build_graph,
        neighbor_ratios,
    )

    parser = script_parser(__doc__)
    parser.add_argument("--every", type=int, default=7, help="use every N-th corpus line")
    parser.add_argument("--docs", action="store_true", help="write the block of docs/reliability.md")
    args = parser.parse_args()
    low, median = [], []
    for row in corpus_rows(CORPUS, every=args.every):
        try:
            ratios = neighbor_ratios(build_graph(corpus_structure(row)))
        except (StructureError, ValueError):
            continue
        if not np.isnan(ratios).all():
            low.append(np.nanmin(ratios))
            median.append(np.nanmedian(ratios))
    low, median = np.array(low), np.array(median)
    qs = (0.0, 1e-4, 1e-3, 0.01, 0.5, 0.99, 0.999, 0.9999, 1.0)
    lines = [(f"Measured on {len(low):,} Materials Project structures (every {args.every}th line of the corpus): "
             "quantiles over structures of the smallest and of the median nearest-neighbour distance / sum of "
             "atomic radii."), "", "| quantile | smallest ratio | median ratio |", "|---|---|---|"]
    lines += [f"| {q:g} | {np.quantile(low, q):.3f} | {np.quantile(median, q):.3f} |" for q in qs]
    lines += ["", (f"Warned: smallest ratio < {MIN_NEIGHBOR_RATIO} ({(low < MIN_NEIGHBOR_RATIO).sum()} of these "
              f"structures), median ratio > {MAX_MEDIAN_NEIGHBOR_RATIO} ({(median > MAX_MEDIAN_NEIGHBOR_RATIO).sum()}"
              " of them). A lattice in nm puts the smallest ratio near 0.1; one in bohr multiplies every ratio by "
              "1.89 (median ≈ 1.8–2.0)."),
              "", "Reproduce: `OMP_NUM_THREADS=1 python studies/plausibility.py --docs`."]
    text = "\n".join(lines)
    print(text)
    if args.docs:
        write_block(ROOT / "docs" / "reliability.md", "plausibility", text)


if __name__ == "__main__":
    main()
