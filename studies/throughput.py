"""Throughput and memory of our featurizer against matminer, dscribe and CHGNet, plus scaling with cell size.

Usage (from the repo root; ../shared/data must exist; dscribe and chgnet optional)::

    OMP_NUM_THREADS=1 python studies/throughput.py [--n 1000] [--sitestats-n 100] [--repeats 3]

Measures, on the same seeded sample of ``--n`` structures of ``../shared/data/mp2025/structures.jsonl.gz``
(seed 0, read once and handed to every method):

* ``ssl e2e <layers>``: :class:`SSLStructureFeaturizer` (mean pooling) from pymatgen Structures to features;
* ``ssl graphs``: graph building alone; ``ssl encoder <layers>``: the frozen encoder alone on the prebuilt graphs;
* ``sitestats``: matminer ``SiteStatsFingerprint.from_preset("CrystalNNFingerprint_ops")`` (one process) on the
  first ``--sitestats-n`` structures of the same sample (it is ~1000× slower); ``ssl_e2e:<layers>@N`` runs ours
  on the same first N structures, so that ratio compares equal inputs;
* ``soap``: dscribe SOAP averaged over atoms, exactly the benchmark harness's ``soap`` descriptor;
* ``chgnet``: CHGNet ``crystal_fea`` (``predict_structure(task="e", return_crystal_feas=True)``, its cheapest path).

Every method runs in its own fresh processes (one for the sample, one for the supercells) (one thread everywhere: ``torch.set_num_threads(1)``), after a
warm-up on 5 structures; the best of ``--repeats`` timings is kept (one for the slow baselines). Speeds are
given per CPU second of the process (robust on a shared machine) and per wall second. Peak memory is the
growth of the process's resident set (VmHWM, reset before the timed run) over the loaded-and-warm state.
Then each method featurizes supercells of Si (diamond) and SrTiO3 up to ~1,700 atoms, one cell per call,
in ascending size; peak memory is the peak RSS during the cell over the loaded-and-warm state.
CHGNet is fed 64 structures per call (16 per batch), as a streaming user would call it; its memory grows by
~4 MB per atom of a cell (see the scaling), which sets its peak on the sample.
Results: ``studies/results/throughput/{throughput,scaling}.json``, ``table.md`` and
``docs/figures/throughput_scaling.png``.

``--encoders`` (``--n 100 --repeats 2``) measures instead the encoders behind the featurizers — ours, SevenNet-0,
SevenNet-l3i5, CHGNet (:data:`ENCODERS`) — end to end through ``StructureFeaturizer``, one structure per forward
pass and 64 per batch, and writes ``encoders.json`` and the ``encoder-speed`` block of ``docs/encoders.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from common import script_parser

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "studies" / "results" / "throughput"
LAYER_SETS = ("01", "012", "012345")


# ---- memory ------------------------------------------------------------------------------------
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---- methods (each returns a callable featurizing a list of Structures) ---------------------------
def _method(name: str) -> Any:
    import torch

    torch.set_num_threads(1)
    kind, _, arg = name.split("@")[0].partition(":")
    if kind == "ssl_e2e":
        from ssl_featurizer import SSLStructureFeaturizer

        f = SSLStructureFeaturizer(layers=arg, pooling=("mean",), ignore_errors=True)
        return f.transform
    if kind == "ssl_graphs":
        from ssl_featurizer.embed import build_graphs
        from ssl_featurizer.models.registry import load_model

        config = load_model().graph_config
        return lambda structures: build_graphs(structures, config)
    if kind == "ssl_encoder":
        from ssl_featurizer.embed import build_graphs, embed_graphs, parse_layers
        from ssl_featurizer.models.registry import load_model

        model = load_model()
        layers = parse_layers(arg, model.n_layers)
        cache: dict[int, list] = {}

        def encoder_only(structures: list) -> list:
            graphs = cache.get(id(structures))  # graphs are built before the clock starts (see _prepare)
            if graphs is None:
                graphs = [g for g in build_graphs(structures, model.graph_config) if not isinstance(g, str)]
            return embed_graphs(model, graphs, layers)

        encoder_only.prepare = lambda structures: cache.__setitem__(  # type: ignore[attr-defined]
            id(structures), [g for g in build_graphs(structures, model.graph_config) if not isinstance(g, str)])
        return encoder_only
    if kind == "encoder":  # encoder:<model>:<layers>:<batch size>, end to end through the structure featurizer
        from ssl_featurizer import StructureFeaturizer

        model, layers, batch_size = arg.split(":")
        f = StructureFeaturizer(model=model, layers=layers, pooling=("mean",), batch_size=int(batch_size),
                                ignore_errors=True)
        return f.transform
    if kind == "sitestats":
        from matminer.featurizers.structure import SiteStatsFingerprint

        from ssl_featurizer.bench.descriptors import matminer_rows

        f = SiteStatsFingerprint.from_preset("CrystalNNFingerprint_ops")
        f.set_n_jobs(1)  # one process, like every other method here
        return lambda structures: matminer_rows(f, structures)
    if kind == "soap":
        from ssl_featurizer.bench.descriptors import HANDBUILT

        return HANDBUILT["soap"]
    if kind == "chgnet":
        from chgnet.model import CHGNet

        model = CHGNet.load(verbose=False)
        model.graph_converter.on_isolated_atoms = "warn"  # an atom with no neighbour in 5 Å must not stop the run

        def chgnet(structures: list) -> list:
            feas = []
            for start in range(0, len(structures), 64):  # in chunks, as a streaming user would
                out = model.predict_structure(structures[start:start + 64], task="e", return_crystal_feas=True,
                                              batch_size=16)
                feas += [p["crystal_fea"] for p in ([out] if isinstance(out, dict) else out)]  # dict for one
            return feas

        return chgnet
    raise ValueError(f"unknown method {name}")


def _failures(out: Any) -> int:
    if isinstance(out, np.ndarray):
        return int(np.isnan(out).all(axis=1).sum()) if out.ndim == 2 else 0
    return sum(1 for o in out if isinstance(o, str))


def _timed(fn: Any, structures: list, repeats: int) -> dict[str, Any]:
    prepare = getattr(fn, "prepare", None)
    if prepare is not None:
        prepare(structures)
    best: dict[str, Any] = {}
    rss0 = _status_kb("VmRSS")
    resettable = _reset_peak()
    for _ in range(repeats):
        load0 = os.getloadavg()[0]
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn(structures)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if not best or cpu < best["cpu_s"]:
            best = {"cpu_s": cpu, "wall_s": wall, "load_1min": load0, "failed": _failures(out)}
    best["peak_rss_growth_mb"] = (_status_kb("VmHWM") - rss0) / 1024 if resettable else None
    best["peak_rss_mb"] = _status_kb("VmHWM") / 1024
    return best


def _worker(args: argparse.Namespace) -> None:
    """One method, one phase, in this fresh process: throughput on the sample, or the supercell scaling."""
    from common import corpus_rows, corpus_structure

    warnings.simplefilter("ignore")
    structures = [corpus_structure(r) for r in itertools.islice(corpus_rows(args.sample), args.limit)]
    fn = _method(args.worker)
    fn(structures[:5])  # warm-up: imports, lazy tables, first-call allocations
    if args.phase == "throughput":
        result = {"method": args.worker, "n": len(structures), "atoms": sum(len(s) for s in structures),
                  **_timed(fn, structures, args.repeats)}
        print("RESULT " + json.dumps(result))
        return
    scaling = []
    prepare = getattr(fn, "prepare", lambda batch: None)
    baseline = _status_kb("VmRSS")  # loaded and warm; cells come in ascending size, so what the previous
    for base, n in _supercells(args.max_scaling_atoms):  # one left allocated stays below this one's peak
        batch = [base * (n, n, n)]
        cell = batch[0]
        reps = max(1, min(5, round(200 / len(cell))))
        prepare(batch)
        resettable = _reset_peak()
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(reps):
            fn(batch)
        scaling.append({"formula": base.composition.reduced_formula, "n_atoms": len(cell),
                        "cpu_s": (time.process_time() - c0) / reps, "wall_s": (time.perf_counter() - w0) / reps,
                        "peak_rss_growth_mb": (_status_kb("VmHWM") - baseline) / 1024 if resettable else None})
    print("RESULT " + json.dumps({"scaling": scaling}))


def _supercells(max_atoms: int) -> list[tuple[Any, int]]:
    from ssl_featurizer.examples import example_structures

    ex = example_structures()
    cells = []
    for name in ("Si (diamond)", "SrTiO3 (perovskite)"):
        base = ex[name]
        cells += [(base, n) for n in range(1, 20) if len(base) * n**3 <= max_atoms]
    return sorted(cells, key=lambda c: len(c[0]) * c[1] ** 3)  # ascending size (see the memory note in _worker)


# ---- driver ------------------------------------------------------------------------------------
def _sample(path: Path, n: int, seed: int) -> list[str]:
    from ssl_featurizer.readers import open_text

    with open_text(path) as fh:
        lines = fh.readlines()
    chosen = np.sort(np.random.default_rng(seed).choice(len(lines), size=n, replace=False))
    return [lines[i].rstrip("\n") for i in chosen]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "pymatgen", "matminer", "dscribe", "chgnet", "sevenn", "numpy", "ssl-featurizer"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem / 2**20, 1), "os": platform.platform()}


def _run_worker(method: str, sample: Path, limit: int, repeats: int, max_atoms: int,
                phase: str) -> dict[str, Any] | str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--worker", method, "--sample", str(sample), "--limit", str(limit),
           "--repeats", str(repeats), "--max-scaling-atoms", str(max_atoms), "--phase", phase]
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return (done.stderr.strip().splitlines() or ["no output"])[-1]


def _table(results: list[dict[str, Any]]) -> str:
    """Markdown table; the ratio compares with ``ssl_e2e:01`` run on the same structures."""
    refs = {r["n"]: r for r in results if r["method"].split("@")[0] == "ssl_e2e:01"}
    lines = [("| method | structures (atoms) | CPU ms / structure | structures / CPU s | wall ms / structure "
              "| ours (e2e, layers 01, same structures) is × faster | peak RSS growth (MB) | failed |"),
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not isinstance(r, dict):
            continue
        per = r["cpu_s"] / r["n"]
        ref = refs.get(r["n"])
        ratio = (per / (ref["cpu_s"] / ref["n"])) if ref else float("nan")
        growth = "n/a" if r["peak_rss_growth_mb"] is None else f"{r['peak_rss_growth_mb']:.0f}"
        lines.append(f"| {r['method']} | {r['n']} ({r['atoms']}) | {1e3 * per:.2f} | {1 / per:.0f} | "
                     f"{1e3 * r['wall_s'] / r['n']:.2f} | {ratio:.2f} | {growth} | {r['failed']} |")
    return "\n".join(lines)


PLOTTED = {"ssl_e2e:01": "ours end-to-end, layers 01", "ssl_e2e:012345": "ours end-to-end, layers 012345",
           "ssl_encoder:01": "ours, encoder alone (01)", "ssl_graphs": "ours, graph building alone",
           "soap": "SOAP (dscribe), averaged", "chgnet": "CHGNet crystal_fea",
           "sitestats": "SiteStatsFingerprint (CrystalNN ops)"}


def _plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.4))
    for r in results:
        if r["method"] not in PLOTTED or not isinstance(r.get("scaling"), list):
            continue
        color = None
        for formula, marker, style in (("Si", "o", "-"), ("SrTiO3", "s", "--")):
            pts = sorted((p["n_atoms"], p["cpu_s"], p["peak_rss_growth_mb"]) for p in r["scaling"]
                         if p["formula"] == formula)
            if not pts:
                continue
            n, t, m = (np.array(v, dtype=float) for v in zip(*pts))
            label = PLOTTED[r["method"]] if formula == "Si" else None
            line = ax_t.loglog(n, t, marker=marker, ls=style, label=label, ms=4, color=color)[0]
            color = line.get_color()
            ax_m.loglog(n, np.maximum(m, 1), marker=marker, ls=style, ms=4, color=color)
    ax_t.set(xlabel="atoms in the cell", ylabel="CPU seconds per structure (1 thread)",
             title="Time (circles: Si supercells, squares: SrTiO3)")
    ax_t.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7)
    ax_m.set(xlabel="atoms in the cell", ylabel="peak memory growth while featurizing it (MB)",
             title="Memory of one call on one cell")
    ax_m.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)


#: ``--encoders``: (model, layers) measured one structure per forward pass and in batches of 64 structures
ENCODERS = (("default", "01"), ("default", "012345"), ("sevennet-0", "12345"), ("sevennet-l3i5", "12345"),
            ("chgnet", "01234"))
ENCODER_BATCHES = (1, 64)


def _encoder_table(results: list[dict[str, Any]]) -> str:
    """Markdown table of ms per structure, single versus batched, per encoder (``--encoders``)."""
    from ssl_featurizer import load_model

    by = {(r["model"], r["layers"], r["batch_size"]): r for r in results if "cpu_s" in r}
    lines = [("| encoder | layers | features (mean pooling) | CPU ms / structure, one per pass | CPU ms / structure, "
              "batched (64) | batching is × faster | failed |"), "|---|---|---|---|---|---|---|"]
    for model, layers in ENCODERS:
        single, batched = by.get((model, layers, 1)), by.get((model, layers, 64))
        if single is None or batched is None:
            why = next((r.get("error", "") for r in results if r["model"] == model and "error" in r), "not run")
            lines.append(f"| {model} | {layers} | | not measured: {why[:80]} | | | |")
            continue
        loaded = load_model(model)
        name = loaded.name if model != "default" else f"{loaded.name} (ours, default)"
        width = sum(loaded.layer_widths[int(c)] for c in layers)
        ms = [1e3 * r["cpu_s"] / r["n"] for r in (single, batched)]
        lines.append(f"| {name} | {layers} | {width} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[0] / ms[1]:.2f} | "
                     f"{batched['failed']} |")
    return "\n".join(lines)


def encoders(args: argparse.Namespace) -> None:
    """ms/structure of every encoder of :data:`ENCODERS`, single and batched, into docs/encoders.md."""
    sys.path.insert(0, str(Path(__file__).parent))
    from docs_blocks import write_block

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "encoder_sample.jsonl"
    sample.write_text("\n".join(_sample(Path(args.data), args.n, args.seed)) + "\n")
    results = []
    for model, layers in ENCODERS:
        for batch in ENCODER_BATCHES:
            r = _run_worker(f"encoder:{model}:{layers}:{batch}", sample, args.n, args.repeats, 0, "throughput")
            r = {"error": r} if isinstance(r, str) else r
            results.append({"model": model, "layers": layers, "batch_size": batch, **r})
            print(model, layers, batch, {k: v for k, v in r.items() if k in ("cpu_s", "n", "error")}, file=sys.stderr)
    sample.unlink()
    meta = {"n": args.n, "seed": args.seed, "data": "../shared/data/mp2025/structures.jsonl.gz",
            "repeats": args.repeats, "machine": _machine(), "versions": _versions(),
            "threads": 1, "atoms": next((r["atoms"] for r in results if "atoms" in r), None)}
    (out / "encoders.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    table = _encoder_table(results)
    note = (f"{args.n} structures ({meta['atoms']} atoms) drawn with seed {args.seed} from "
            "`../shared/data/mp2025/structures.jsonl.gz`; end to end (pymatgen Structure → mean-pooled features "
            "through `StructureFeaturizer`), one thread (`OMP_NUM_THREADS=1`), best of "
            f"{args.repeats} after a warm-up, each encoder in a fresh process; {meta['machine']['cpu']}, shared "
            "with other jobs. Generated by `studies/throughput.py --encoders`.")
    write_block(ROOT / "docs" / "encoders.md", "encoder-speed", f"{table}\n\n{note}")
    print(table)


def main() -> None:
    parser = script_parser(__doc__, corpus=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sitestats-n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-scaling-atoms", type=int, default=1800)
    parser.add_argument("--sitestats-max-atoms", type=int, default=1100)
    parser.add_argument("--methods", default="ssl_e2e:01,ssl_e2e:012,ssl_e2e:012345,ssl_graphs,ssl_encoder:01,"
                        "ssl_encoder:012,ssl_encoder:012345,soap,chgnet,sitestats,ssl_e2e:01@N,ssl_e2e:012@N,"
                        "ssl_e2e:012345@N", help="comma-separated; @N: the first --sitestats-n structures only")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--encoders", action="store_true",
                        help="measure ms/structure of ours, SevenNet and CHGNet, single vs batched (--n 100 "
                             "--repeats 2 recommended) and write the table into docs/encoders.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--sample", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--phase", default="throughput", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return
    if args.encoders:
        encoders(args)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sample = out / "sample.jsonl"
    sample.write_text("\n".join(_sample(Path(args.data), args.n, args.seed)) + "\n")
    results: list[dict[str, Any]] = []
    started, load_start = time.time(), os.getloadavg()[0]
    for method in args.methods.replace("@N", f"@{args.sitestats_n}").split(","):
        slow = method in ("sitestats", "chgnet")
        subset = method == "sitestats" or "@" in method
        limit = args.sitestats_n if method == "sitestats" else int(method.split("@")[1]) if "@" in method else args.n
        max_atoms = args.sitestats_max_atoms if method == "sitestats" else 0 if subset else args.max_scaling_atoms
        t0 = time.time()
        r = _run_worker(method, sample, limit, 1 if slow else args.repeats, max_atoms, "throughput")
        if isinstance(r, str):
            print(f"{method}: FAILED ({r})", file=sys.stderr)
            results.append({"method": method, "error": r})
            continue
        if max_atoms > 0:
            scaled = _run_worker(method, sample, 5, 1, max_atoms, "scaling")
            r["scaling"] = scaled["scaling"] if isinstance(scaled, dict) else scaled
        print(f"{method}: {1e3 * r['cpu_s'] / r['n']:.2f} CPU ms/structure over {r['n']} structures "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)
        results.append(r)
    ok = [r for r in results if "error" not in r]
    meta = {"n": args.n, "seed": args.seed, "data": "../shared/data/mp2025/structures.jsonl.gz",
            "sitestats_n": args.sitestats_n, "repeats": args.repeats, "machine": _machine(),
            "versions": _versions(), "load_1min_start_end": [load_start, os.getloadavg()[0]],
            "minutes": (time.time() - started) / 60}
    (out / "throughput.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    table = _table(ok)
    (out / "table.md").write_text(table + "\n")
    _plot(ok, ROOT / "docs" / "figures" / "throughput_scaling.png")
    sample.unlink()
    print(table)


if __name__ == "__main__":
    main()
