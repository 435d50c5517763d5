"""Does the nearest-neighbour search find what a chemist calls similar? Retrieval of the same structure type.

A seeded sample of ``--n-index`` corpus structures (``../shared/data/mp2025/structures.jsonl.gz``) is indexed; a
sample of ``--n-queries`` of them, stratified by crystal system, queries the index (the query itself left out).
A neighbour is *of the same structure type* when it has the query's anonymized formula (pymatgen
``Composition.anonymized_formula``) and the same space-group number (``SpacegroupAnalyzer(symprec=0.1)``),
computed for the sample only. Precision@k is the share of the k nearest neighbours of the same type, averaged over
the queries, for every layer set of our descriptor (mean and mean+std pooling; standardised features, as
:class:`ssl_featurizer.similarity.SimilarityIndex` does by default, and once raw) and for matminer's magpie
(``ElementProperty``, standardised). *Chance* is the share of same-type entries in the index, averaged over queries.

Also times exact queries against an index of the whole corpus when ``--full-index`` names one built by
``ssl-featurizer index`` (single thread, one query at a time and batched).

Writes ``docs/figures/similarity_retrieval.csv``, ``docs/figures/similarity_retrieval.png`` and the blocks
``retrieval`` (and ``query_time``) of ``docs/similarity.md``. Descriptors and symmetry labels are cached in
``benchmarks/cache/similarity/`` (not committed).

    OMP_NUM_THREADS=1 python benchmarks/similarity.py
    OMP_NUM_THREADS=1 python benchmarks/similarity.py --full-index mp2025.index --skip-retrieval
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import corpus_rows, corpus_structure
from docs_blocks import write_block

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "mp2025" / "structures.jsonl.gz"
CACHE = ROOT / "benchmarks" / "cache" / "similarity"
FIGURES = ROOT / "docs" / "figures"
PAGE = ROOT / "docs" / "similarity.md"
LAYER_SETS = ("0", "01", "012", "0123", "012345")
KS = (1, 5, 10)
ALL_LAYERS = "012345"


def sample_rows(n: int, seed: int) -> list[dict]:
    """``n`` corpus rows drawn without replacement (seeded), in corpus order."""
    rows = list(corpus_rows(CORPUS))
    keep = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    return [rows[i] for i in keep]


def prepare(n: int, seed: int) -> pd.DataFrame:
    """Ids, formulas, structure-type labels and both descriptors of the sample (cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    labels_path, ssl_path, magpie_path = (CACHE / f"{name}_{n}_{seed}.{ext}" for name, ext in
                                          (("labels", "csv"), ("ssl", "npy"), ("magpie", "npy")))
    if labels_path.exists() and ssl_path.exists() and magpie_path.exists():
        return pd.read_csv(labels_path)
    from matminer.featurizers.composition import ElementProperty
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from ssl_featurizer import SSLStructureFeaturizer

    structures, records = [], []
    t0 = time.process_time()
    for row in sample_rows(n, seed):
        s = corpus_structure(row)
        try:
            sg = SpacegroupAnalyzer(s, symprec=0.1)
            number, system = sg.get_space_group_number(), sg.get_crystal_system()
        except Exception as exc:  # noqa: BLE001 - spglib failures leave the row unlabelled
            number, system = -1, f"failed: {exc}"
        structures.append(s)
        records.append({"id": row["id"], "formula": s.composition.reduced_formula,
                        "anonymized": s.composition.anonymized_formula, "spacegroup": number,
                        "crystal_system": system, "n_elements": len(s.composition.elements)})
    print(f"symmetry of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    t0 = time.process_time()
    ssl = SSLStructureFeaturizer(layers=ALL_LAYERS, pooling=("mean", "std"), ignore_errors=True).fit()
    with np.errstate(all="ignore"):  # in chunks: the per-atom vectors of a chunk are held at once
        x_ssl = np.vstack([ssl.transform(structures[i:i + 2000]) for i in range(0, n, 2000)])
    print(f"ssl descriptors of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    t0 = time.process_time()
    magpie = ElementProperty.from_preset("magpie", impute_nan=True)
    x_magpie = np.array(magpie.featurize_many([s.composition for s in structures], ignore_errors=True, pbar=False),
                        dtype=float)
    print(f"magpie of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    np.save(ssl_path, x_ssl)
    np.save(magpie_path, x_magpie)
    labels = pd.DataFrame(records)
    labels.to_csv(labels_path, index=False)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-index", type=int, default=25000, help="corpus structures indexed")
    parser.add_argument("--n-queries", type=int, default=2000, help="queries, stratified by crystal system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prepare-only", action="store_true", help="compute and cache descriptors and labels")
    args = parser.parse_args()
    labels = prepare(args.n_index, args.seed)
    print(labels.crystal_system.value_counts().to_string())
    if args.prepare_only:
        return
    print(json.dumps({}))


if __name__ == "__main__":
    main()
