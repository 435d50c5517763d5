"""Memory of ``ssl-featurizer featurize`` over a long stream: resident set size against structures done.

Usage (from the repo root; ../shared/data must exist)::

    OMP_NUM_THREADS=1 python studies/stream_memory.py [--limit 10000] [--chunk-size 1000]

Runs the real command line on the first ``--limit`` structures of ``../shared/data/mp2025/structures.jsonl.gz``
in a child process, samples its resident set (``/proc/<pid>/status``) every 0.5 s together with the number of
structures already written (from the output's manifest), and reports the peak (``ru_maxrss`` of the child).
Flat memory after the first chunks is what lets the bound be extrapolated to the whole corpus.
Writes ``studies/results/throughput/stream_memory.json`` and ``docs/figures/stream_memory.png``.

``--largest N`` streams instead the N structures of the corpus with the most atoms, largest first: no chunk
of the corpus can hold more atoms than its ``--chunk-size`` largest structures, so this run's peak bounds the
memory of the whole corpus (``stream_memory_largest.json``, ``stream_memory_largest.png``).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import script_parser

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _done(out: Path) -> int:
    try:
        return json.loads((out / "_manifest.json").read_text())["n_read"]
    except (OSError, ValueError, KeyError):
        return 0


def main() -> None:
    parser = script_parser(__doc__, corpus=True)
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--layers", default="012")
    parser.add_argument("--largest", type=int, default=0, help="stream the N largest structures instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stream_memory_"))
    out = work / "features.parquet"
    source, suffix, corpus_stats = args.data, "", {}
    if args.largest:
        source, corpus_stats = _largest(Path(args.data), args.largest, args.chunk_size, work)
        suffix = "_largest"
    exe = Path(sys.executable).with_name("ssl-featurizer")
    cmd = [str(exe), "featurize", source, "-o", str(out), "--limit", str(args.limit), "--chunk-size",
           str(args.chunk_size), "--layers", args.layers, "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    samples = []
    while child.poll() is None:
        rss = _rss_mb(child.pid)
        if rss is not None:
            samples.append({"t": round(time.perf_counter() - t0, 2), "rss_mb": round(rss, 1), "done": _done(out)})
        time.sleep(0.5)
    stderr = child.stderr.read() if child.stderr else ""
    seconds = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"featurize failed: {stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    manifest = json.loads((out / "_manifest.json").read_text())
    after_first = [s["rss_mb"] for s in samples if s["done"] >= args.chunk_size]
    shown = "LARGEST.jsonl.gz" if args.largest else "../shared/data/mp2025/structures.jsonl.gz"
    result = {"command": " ".join(["ssl-featurizer", *cmd[1:2], shown, *cmd[3:4], "OUT.parquet", *cmd[5:]]),
              **corpus_stats,
              "limit": args.limit, "chunk_size": args.chunk_size, "layers": args.layers, "seconds": round(seconds, 1),
              "n_ok": manifest["n_ok"], "n_failed": manifest["n_failed"], "peak_rss_mb": round(peak, 1),
              "rss_after_first_chunk_min_max_mb": [min(after_first, default=None), max(after_first, default=None)],
              "output_mb": round(sum(f.stat().st_size for f in out.iterdir()) / 2**20, 1),
              "load_1min_end": os.getloadavg()[0], "samples": samples}
    dest = ROOT / "studies" / "results" / "throughput" / f"stream_memory{suffix}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(result, indent=1) + "\n")
    shutil.rmtree(work)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([s["done"] for s in samples], [s["rss_mb"] for s in samples], ".-", ms=3)
    ax.axhline(peak, ls="--", c="gray", lw=1, label=f"peak {peak:.0f} MB")
    what = f"the {args.largest} largest corpus structures" if args.largest else "the corpus"
    ax.set(xlabel="structures written", ylabel="resident set (MB)", ylim=(0, max(2300, peak * 1.1)),
           title=f"featurize {what}, chunks of {args.chunk_size}")
    ax.axhline(2048, c="red", lw=1, label="2 GB goal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / "figures" / f"stream_memory{suffix}.png", dpi=130)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))


def _largest(corpus: Path, n: int, chunk_size: int, work: Path) -> tuple[str, dict]:
    """Write the n largest structures (largest first) to a corpus file; atom counts of the corpus' chunks."""
    import gzip

    import numpy as np

    from ssl_featurizer.readers import open_text

    with open_text(corpus) as fh:
        lines = fh.readlines()
    sizes = np.array([line.count('"', line.index('"species"'), line.index('"frac"')) // 2 - 1 for line in lines])
    order = np.argsort(-sizes, kind="stable")[:n]
    path = work / "largest.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(lines[i] for i in order)
    chunks = np.add.reduceat(sizes, np.arange(0, len(sizes), chunk_size))
    stats = {"corpus_structures": len(sizes), "corpus_atoms": int(sizes.sum()),
             "corpus_max_atoms_per_chunk": int(chunks.max()), "corpus_mean_atoms_per_chunk": float(chunks.mean()),
             "largest_atoms_first_chunk": int(sizes[order[:chunk_size]].sum())}
    return str(path), stats


if __name__ == "__main__":
    main()
