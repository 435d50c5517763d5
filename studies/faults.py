"""Figures of the faults table in docs/reliability.md: hostile cells' memory, a Dask worker killed on a corpus run.

Usage (from the repo root)::

    OMP_NUM_THREADS=1 python studies/faults.py [--only memory|dask] [--n-dask 3000]

``memory``: each hostile cell is built and then featurized (``layers="012"``) in a fresh child process; the
growth of its peak resident set (``ru_maxrss``) during featurization is the extra memory; the outcome is the
descriptor or the refusal's reason.

``dask``: the first ``--n-dask`` structures of ``../shared/data/mp2025/structures.jsonl.gz`` (skipped when
absent) go through :func:`ssl_featurizer.dask_featurize.featurize_bag` on a ``LocalCluster`` of 2 worker processes; one
worker is SIGKILLed once a quarter of the partitions have started. Reported: rows out against rows in, the
largest difference to the in-process featurizer, the partitions computed twice, wall times.

Writes ``studies/results/faults/faults.json`` and the ``faults-figures`` block of docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from common import script_parser
from docs_blocks import write_block
from project_tasks import corpus_file

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "studies" / "results" / "faults" / "faults.json"
CORPUS = corpus_file()

# Each case builds one structure; the child featurizes it and prints what happened.
CASES = {
    "baseline: 2-atom cell": "Structure(Lattice.cubic(2.87), ['Fe', 'Fe'], [[0, 0, 0], [.5, .5, .5]])",
    "20,000-site cell (Si 10×10×25 conventional cells)":
        "Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.431), ['Si'], [[0, 0, 0]]) * (10, 10, 25)",
    "20,001-site cell": "Structure(Lattice.cubic(80.0), ['Si'] * 20001, np.random.default_rng(0).random((20001, 3)))",
    "tiny lattice: one atom in a 0.11 Å cube (~10⁶ atoms within 8 Å)":
        "Structure(Lattice.cubic(0.11), ['Fe'], [[0, 0, 0]])",
    "dense cluster at the limit: 3,375 atoms 0.12 Å apart in a 40 Å cell (11.4 M pairs)":
        "cluster(15, 0.12, 40.0)",
    "dense cluster beyond the limit: 8,000 atoms 0.12 Å apart in a 50 Å cell (64 M pairs)":
        "cluster(20, 0.12, 50.0)",
    "site 10¹⁵ cells away": "Structure(Lattice.cubic(3), ['Fe', 'Fe'], [[0, 0, 0], [1e15, .5, .5]])",
}

CHILD = """
import json, resource, sys, time, warnings
import numpy as np
from pymatgen.core import Lattice, Structure
from ssl_featurizer import SSLStructureFeaturizer

def cluster(n, spacing, cell):
    grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * spacing
    return Structure(Lattice.cubic(cell), ["Fe"] * len(grid), grid + 1.0, coords_are_cartesian=True)

featurizer = SSLStructureFeaturizer(layers="012", ignore_errors=True).fit()
structure = eval(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    rows, errors = featurizer.featurize_with_errors([structure])
print(json.dumps({"seconds": time.perf_counter() - t0, "n_sites": len(structure), "error": errors[0],
                  "finite": bool(np.isfinite(rows).all()), "peak_before_mb": before,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_memory() -> list[dict]:
    results = []
    for name, expr in CASES.items():
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, expr], capture_output=True, text=True, timeout=900,
                              check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{name}: child failed:\n{proc.stderr[-3000:]}")
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row.update(case=name, wall_s=wall)
        results.append(row)
        print(json.dumps(row), flush=True)
    return results


def run_dask(n: int) -> dict | None:
    if not CORPUS.exists():
        print(f"{CORPUS} not found: dask run skipped")
        return None
    import itertools
    import signal
    import warnings

    import dask.bag as db
    import numpy as np
    from distributed import Client, LocalCluster

    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.dask_featurize import EVENT_TOPIC, featurize_bag, register_model, retried_partitions
    from ssl_featurizer.readers import open_text, structure_from_object

    with open_text(CORPUS) as fh:
        lines = list(itertools.islice(fh, n))
    featurizer = SSLStructureFeaturizer(layers="01", ignore_errors=True).fit()

    structures = [structure_from_object(line)[0] for line in lines]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = featurizer.transform(structures)
    in_process_s = time.perf_counter() - t0
    n_partitions = 64
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        register_model(client, featurizer.model)
        pids = client.run(os.getpid)
        t0 = time.perf_counter()
        future = client.compute(featurize_bag(db.from_sequence(lines, npartitions=n_partitions), featurizer))

        def starts() -> list[dict]:
            return [m for _, m in client.get_events(EVENT_TOPIC) if m.get("action") == "partition-start"]

        while len(starts()) < n_partitions // 4 and not future.done():
            time.sleep(0.01)
        killed_after = len(starts())
        victim = starts()[-1]["worker"]
        os.kill(pids[victim], signal.SIGKILL)
        rows = np.stack(future.result())
        dask_s = time.perf_counter() - t0
        retried = retried_partitions(client)
    both = np.isfinite(expected).all(axis=1)
    return {"n_in": n, "n_out": len(rows), "n_partitions": n_partitions, "killed_after_starts": killed_after,
            "retried_partitions": len(retried), "max_abs_diff": float(np.abs(rows[both] - expected[both]).max()),
            "nan_rows_equal": bool((np.isnan(rows).all(axis=1) == ~both).all()),
            "in_process_s": in_process_s, "dask_s": dask_s}


def render(result: dict) -> str:
    lines = [(f"Measured on {result['machine']}; hostile cells: `{result.get('memory_command')}`, Dask: "
             f"`{result.get('dask_command')}`."), ""]
    if result.get("memory"):
        lines += ["| hostile input | outcome | peak memory growth while featurizing | time |", "|---|---|---|---|"]
        for r in result["memory"]:
            outcome = f"refused: \"{r['error']}\"" if r["error"] else \
                f"featurized ({r['n_sites']:,} sites, {'finite' if r['finite'] else 'NOT finite'})"
            lines.append(f"| {r['case']} | {outcome} | +{r['peak_mb'] - r['peak_before_mb']:,.0f} MB "
                         f"(peak {r['peak_mb']:,.0f} MB) | {r['seconds']:.2f} s |")
        limit = next((r for r in result["memory"] if r["case"].startswith("dense cluster at the limit")), None)
        if limit and not limit["error"]:
            from ssl_featurizer.graph.crystal_graph import MAX_PAIRS

            per_pair = (limit["peak_mb"] - limit["peak_before_mb"]) * 2**20 / limit["n_sites"] ** 2
            lines += ["", (f"The dense cluster's search holds every pair of its atoms ({limit['n_sites']:,}² pairs): "
                      f"{per_pair:.0f} bytes per pair at the peak, so a search at the limit of {MAX_PAIRS:,} pairs "
                      f"needs about {per_pair * MAX_PAIRS / 2**30:.2f} GB above the baseline.")]
    d = result.get("dask")
    if d:
        lines += ["", (f"Dask, a worker SIGKILLed: {d['n_in']:,} corpus structures in {d['n_partitions']} "
                  f"partitions on 2 worker processes, one killed after {d['killed_after_starts']} partitions had "
                  f"started: {d['n_out']:,} rows out, {d['retried_partitions']} partitions computed twice (reported "
                  f"by `retried_partitions`), largest difference to the in-process rows {d['max_abs_diff']:.1e}, "
                  f"failed rows the same: {d['nan_rows_equal']}; {d['dask_s']:.0f} s with the kill and restart "
                  f"against {d['in_process_s']:.0f} s in one process.")]
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--only", choices=["memory", "dask"], default=None)
    parser.add_argument("--n-dask", type=int, default=3000)
    parser.add_argument("--render", action="store_true", help="only rewrite the docs block from the saved results")
    args = parser.parse_args()
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    result = {**previous, "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
              f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"}
    if args.render:
        result = previous
    if args.only in (None, "memory") and not args.render:
        result["memory"] = run_memory()
        result["memory_command"] = "OMP_NUM_THREADS=1 python studies/faults.py --only memory"
    if args.only in (None, "dask") and not args.render:
        result["dask"] = run_dask(args.n_dask)
        result["dask_command"] = f"OMP_NUM_THREADS=1 python studies/faults.py --only dask --n-dask {args.n_dask}"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    write_block(ROOT / "docs" / "reliability.md", "faults-figures", render(result))
    print(render(result))


if __name__ == "__main__":
    main()
