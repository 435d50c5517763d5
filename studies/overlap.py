"""Which corpus structures are benchmark structures? By id and by structure match (pymatgen StructureMatcher).

Every structure of every benchmark task (the four kong2023 tasks, all MAGNDATA structures, matbench_dielectric)
is compared with every corpus structure of the same reduced formula and a volume per atom within a factor
``VOLUME_RATIO`` (1.3: relaxed and experimental cells of one material differ by a few per cent; the bound keeps the
~1,000 SiO2 polymorphs from costing hours); a corpus entry *overlaps* when its id is the task row's id or when
``StructureMatcher()`` (default tolerances: ltol 0.2, stol 0.3, 5°, primitive cells, volumes scaled) fits the two. Oxidation states and spins are removed first; disordered task structures (no
ordered corpus twin can equal them) are counted and skipped.

The result serves two purposes:

- the **inductive control** of pretraining: ``ssl-featurizer pretrain --exclude-ids excluded_ids.txt`` trains on
  the corpus minus every overlapping entry;
- **development tasks disjoint from the gate**: development rows are drawn only from corpus ids not listed.

Writes ``studies/results/overlap/{matches.csv, excluded_ids.txt, summary.md}``. About 15 min on 2 cores.

    python studies/overlap.py --jobs 2
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from common import corpus_rows, corpus_structure, script_parser
from project_tasks import corpus_file, shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
DATA = shared_data_dir()
OUT = ROOT / "studies" / "results" / "overlap"
VOLUME_RATIO = 1.3
TASK_FILES = {  # source → matminer JSON file under the shared data folder
    "kong2023_formation_energy": "tasks/kong2023_formation_energy.json.gz",
    "kong2023_hse_gap": "tasks/kong2023_hse_gap.json.gz",
    "kong2023_log_kvrh": "tasks/kong2023_log_kvrh.json.gz",
    "kong2023_log_gvrh": "tasks/kong2023_log_gvrh.json.gz",
    "magndata": "tasks/magndata_structures.json.gz",
    "magndata_transition_temperature": "tasks/magndata_transition_temperature.json.gz",
    "matbench_dielectric": "matminer/matbench_dielectric.json.gz",
}


def _plain(structure):
    """The structure without oxidation states, spins or site properties (what StructureMatcher should compare)."""
    from pymatgen.core import Structure

    return Structure(structure.lattice, [site.species.element_composition for site in structure],
                     structure.frac_coords)


def benchmark_structures() -> tuple[list[tuple[str, str, object]], Counter]:
    """``[(source, row id, plain ordered Structure)]`` over all task files, and the skipped rows per reason."""
    from ssl_featurizer.bench.tasks import read_structure_table

    rows, skipped = [], Counter()
    for source, file in TASK_FILES.items():
        df, failures = read_structure_table(DATA / file)
        skipped[f"{source}: unreadable"] += len(failures)
        ids = df["id"].astype(str) if "id" in df.columns else pd.Series([f"row{i}" for i in range(len(df))])
        for i, s in zip(ids, df["structure"]):
            if not s.is_ordered:
                skipped[f"{source}: disordered"] += 1
                continue
            rows.append((source, i, _plain(s)))
    return rows, skipped


def corpus_candidates(formulas: set[str]) -> tuple[dict[str, list[tuple[str, object]]], set[str]]:
    """Corpus structures whose reduced formula is in ``formulas`` (by formula), and every corpus id."""
    from pymatgen.core import Composition

    by_formula: dict[str, list[tuple[str, object]]] = defaultdict(list)
    ids = set()
    for row in corpus_rows(corpus_file()):
        ids.add(row["id"])
        formula = Composition(Counter(row["species"])).reduced_formula
        if formula in formulas:
            by_formula[formula].append((row["id"], corpus_structure(row)))
    return by_formula, ids


def _match_group(args) -> list[tuple[int, str]]:
    """(task row position, corpus id) pairs that StructureMatcher fits, for the rows of one reduced formula."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    rows, candidates = args
    matcher = StructureMatcher()
    found = []
    for k, s in rows:
        v = s.volume / len(s)
        for cid, c in candidates:
            if 1 / VOLUME_RATIO <= c.volume / len(c) / v <= VOLUME_RATIO and matcher.fit(s, c):
                found.append((k, cid))
    return found


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is absent: the overlap study needs the corpus and the task files")
    start = time.time()
    rows, skipped = benchmark_structures()
    formulas = {s.composition.reduced_formula for _, _, s in rows}
    by_formula, corpus_ids = corpus_candidates(formulas)
    print(f"{len(rows)} task structures, {len(formulas)} formulas, "
          f"{sum(map(len, by_formula.values()))} corpus candidates ({time.time() - start:.0f} s)", flush=True)
    groups: dict[str, list[tuple[int, object]]] = defaultdict(list)
    for k, (_, _, s) in enumerate(rows):
        groups[s.composition.reduced_formula].append((k, s))
    work = [(g[i:i + 4], by_formula[f]) for f, g in groups.items() if by_formula.get(f) for i in range(0, len(g), 4)]
    work.sort(key=lambda w: -len(w[0]) * len(w[1]))  # largest first, for a balanced pool
    matches = [(source, i, i, "id") for source, i, _ in rows if i in corpus_ids]
    with ProcessPoolExecutor(args.jobs) as pool:
        for n, found in enumerate(pool.map(_match_group, work, chunksize=4), 1):
            matches += [(rows[k][0], rows[k][1], cid, "structure") for k, cid in found]
            if n % 500 == 0 or n == len(work):
                print(f"{n}/{len(work)} groups, {len(matches)} matches ({time.time() - start:.0f} s)", flush=True)
    table = pd.DataFrame(matches, columns=["source", "task_id", "corpus_id", "how"])
    table = table.groupby(["source", "task_id", "corpus_id"], as_index=False)["how"].agg(
        lambda h: "+".join(sorted(set(h))))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "matches.csv", index=False)
    excluded = sorted(set(table.corpus_id), key=lambda i: (i.split("-")[0], int(i.split("-")[-1])
                                                           if i.split("-")[-1].isdigit() else 0, i))
    (out / "excluded_ids.txt").write_text("\n".join(excluded) + "\n")
    n_rows = Counter(source for source, _, _ in rows)
    lines = ["| source | task structures (ordered) | with a corpus twin | by id | by structure only | corpus ids |",
             "|---|---|---|---|---|---|"]
    for source in TASK_FILES:
        t = table[table.source == source]
        per_row = t.groupby("task_id")["how"].agg(lambda h: "id" in "+".join(h))
        lines.append(f"| {source} | {n_rows[source]:,} | {t.task_id.nunique():,} | {int(per_row.sum()):,} | "
                     f"{int((~per_row).sum()):,} | {t.corpus_id.nunique():,} |")
    lines.append(f"\n**{len(excluded):,} corpus ids** ({len(excluded) / len(corpus_ids):.1%} of {len(corpus_ids):,}) "
                 "overlap some benchmark structure. Skipped task rows: "
                 + (", ".join(f"{k} {v}" for k, v in sorted(skipped.items()) if v) or "none")
                 + f". {time.time() - start:.0f} s with {args.jobs} processes.")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
