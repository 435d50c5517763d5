"""Does the nearest-neighbour search find what a chemist calls similar? Retrieval of the same structure type.

A seeded sample of ``--n-index`` corpus structures (``../shared/data/mp2025/structures.jsonl.gz``) is indexed; a
sample of ``--n-queries`` of them, stratified by crystal system, queries the index (the query itself left out).
A neighbour is *of the same structure type* when it has the query's anonymized formula (pymatgen
``Composition.anonymized_formula``) and the same space-group number (``SpacegroupAnalyzer(symprec=0.1)``),
computed for the sample only. Precision@k is the share of the k nearest neighbours of the same type, averaged over
the queries, for every layer set of our descriptor (mean and mean+std pooling; standardised features, as
:class:`ssl_featurizer.similarity.SimilarityIndex` does by default, and once raw) and for matminer's magpie
(``ElementProperty``, standardised) and SOAP (the benchmark harness's ``soap``: dscribe, averaged over atoms,
standardised; when dscribe is installed). *Chance* is the share of same-type entries in the index, averaged over
queries.

Also times exact queries against an index of the whole corpus when ``--full-index`` names one built by
``ssl-featurizer index`` (single thread, one query at a time and batched).

Writes ``docs/figures/similarity_retrieval.csv``, ``docs/figures/similarity_retrieval.png`` and the blocks
``retrieval`` (and ``query_time``) of ``docs/similarity.md``. Descriptors and symmetry labels are cached in
``studies/cache/similarity/`` (not committed).

    OMP_NUM_THREADS=1 python studies/similarity_study.py
    OMP_NUM_THREADS=1 python studies/similarity_study.py --full-index mp2025.index --skip-retrieval
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import corpus_rows, corpus_structure, script_parser
from docs_blocks import write_block
from project_tasks import anchors_dir, corpus_file

ROOT = Path(__file__).resolve().parents[1]
CORPUS = corpus_file()
CACHE = ROOT / "studies" / "cache" / "similarity"
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
        structures.append(s)
        if labels_path.exists():
            continue
        try:
            sg = SpacegroupAnalyzer(s, symprec=0.1)
            number, system = sg.get_space_group_number(), sg.get_crystal_system()
        except Exception as exc:  # noqa: BLE001 - spglib failures leave the row unlabelled
            number, system = -1, f"failed: {exc}"
        records.append({"id": row["id"], "formula": s.composition.reduced_formula,
                        "anonymized": s.composition.anonymized_formula, "spacegroup": number,
                        "crystal_system": system, "n_elements": len(s.composition.elements)})
    if not labels_path.exists():
        pd.DataFrame(records).to_csv(labels_path, index=False)
        print(f"symmetry of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    if not ssl_path.exists():
        t0 = time.process_time()
        ssl = SSLStructureFeaturizer(layers=ALL_LAYERS, pooling=("mean", "std"), ignore_errors=True).fit()
        with np.errstate(all="ignore"):  # in chunks: the per-atom vectors of a chunk are held at once
            x_ssl = np.vstack([ssl.transform(structures[i:i + 2000]) for i in range(0, n, 2000)])
        np.save(ssl_path, x_ssl)
        print(f"ssl descriptors of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    t0 = time.process_time()
    magpie = ElementProperty.from_preset("magpie", impute_nan=True)
    magpie.set_n_jobs(1)  # matminer's default process pool is slower here than one process
    x_magpie = np.array(magpie.featurize_many([s.composition for s in structures], ignore_errors=True, pbar=False),
                        dtype=float)
    np.save(magpie_path, x_magpie)
    print(f"magpie of {n}: {time.process_time() - t0:.0f} CPU s", flush=True)
    return pd.read_csv(labels_path)


def prepare_soap(n: int, seed: int) -> np.ndarray | None:
    """SOAP (the benchmark harness's ``soap``: dscribe, averaged over atoms) of the sample, cached; None without
    dscribe."""
    path = CACHE / f"soap_{n}_{seed}.npy"
    if not path.exists():
        import importlib.util

        if importlib.util.find_spec("dscribe") is None:
            print("dscribe not installed: no SOAP row", flush=True)
            return None
        from ssl_featurizer.bench.descriptors import HANDBUILT

        t0 = time.process_time()
        structures = [corpus_structure(row) for row in sample_rows(n, seed)]
        x = HANDBUILT["soap"](structures)  # one call: the species list (the columns) spans the whole sample
        np.save(path, x)
        print(f"soap of {n}: {x.shape[1]} features, {time.process_time() - t0:.0f} CPU s", flush=True)
    return np.load(path)


def feature_sets(n_layers_all: int, width: int) -> dict[str, tuple[np.ndarray, bool]]:
    """Column selections of the cached ``012345`` mean+std matrix (pooling → layer → dimension), by name."""
    half = n_layers_all * width
    sets = {}
    for layers in LAYER_SETS:
        mean = np.arange(len(layers) * width)
        sets[f"ssl:{layers}:mean"] = (mean, True)
        sets[f"ssl:{layers}:mean-std"] = (np.concatenate([mean, half + mean]), True)
    sets["ssl:012:mean-std (raw)"] = (sets["ssl:012:mean-std"][0], False)
    return sets


def stratified_queries(labels: pd.DataFrame, n: int, seed: int) -> np.ndarray:
    """Positions of ``n`` rows, as evenly spread over crystal systems as their sizes allow (seeded)."""
    rng = np.random.default_rng(seed + 1)
    groups = {k: rng.permutation(v.to_numpy()) for k, v in labels.groupby("crystal_system").groups.items()}
    quota = dict.fromkeys(groups, 0)
    left = n
    while left > 0:
        open_ = [k for k in groups if quota[k] < len(groups[k])]
        share = max(1, left // len(open_))
        for k in open_:
            take = min(share, len(groups[k]) - quota[k], left)
            quota[k] += take
            left -= take
    return np.sort(np.concatenate([groups[k][:quota[k]] for k in groups]))


def precision_at_k(labels: pd.DataFrame, methods: dict[str, tuple[np.ndarray, bool]], n_queries: int,
                   seed: int) -> tuple[pd.DataFrame, dict]:
    """Precision@k of every descriptor of ``methods`` (``name: (rows, standardise)``) on one index and one set of
    queries: the rows where every descriptor and the symmetry labels are defined."""
    from ssl_featurizer.similarity import SimilarityIndex

    ok = (labels.spacegroup > 0).to_numpy()
    for X, _ in methods.values():
        ok &= np.isfinite(X).all(1)
    labels = labels[ok].reset_index(drop=True)
    methods = {name: (X[ok], standardize) for name, (X, standardize) in methods.items()}
    kind = (labels.anonymized + "|" + labels.spacegroup.astype(str)).to_numpy()
    queries = stratified_queries(labels, n_queries, seed)
    counts = pd.Series(kind).value_counts()
    same_type = counts[kind[queries]].to_numpy() - 1  # other index entries of the query's type
    info = {"n_index": len(labels), "n_dropped": int((~ok).sum()), "n_queries": len(queries),
            "n_types": len(counts), "chance": float(np.mean(same_type / (len(labels) - 1))),
            "with_a_same_type_entry": float(np.mean(same_type > 0)),
            "systems": labels.crystal_system[queries].value_counts().to_dict()}
    kmax = max(KS)
    rows = []
    for name, (X, standardize) in methods.items():
        index = SimilarityIndex.from_features(X, labels.id, labels.formula, standardize=standardize)
        t0 = time.process_time()
        _, pos = index.kneighbors(X[queries], k=kmax + 1)
        seconds = time.process_time() - t0
        neighbours = np.array([[p for p in row if p != q][:kmax] for row, q in zip(pos, queries)])
        hit = kind[neighbours] == kind[queries][:, None]
        row = {"descriptor": name, "n_features": X.shape[1], "standardized": standardize,
               "query_cpu_ms": 1e3 * seconds / len(queries)}
        for k in KS:
            row[f"p@{k}"] = float(hit[:, :k].mean())
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return pd.DataFrame(rows), info


def retrieval(labels: pd.DataFrame, x_ssl: np.ndarray, x_magpie: np.ndarray, n_queries: int, seed: int,
              width: int, x_soap: np.ndarray | None = None) -> tuple[pd.DataFrame, dict]:
    """Precision@k of every layer set of ours, magpie and (when given) SOAP on the same index and queries."""
    methods = {name: (x_ssl[:, cols], standardize) for name, (cols, standardize) in
               feature_sets(len(ALL_LAYERS), width).items()}
    methods["magpie"] = (x_magpie, True)
    if x_soap is not None:
        methods["soap"] = (x_soap, True)
    return precision_at_k(labels, methods, n_queries, seed)


def slow_subset(n: int, n_queries: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """The descriptors too slow for the main sample, on a smaller one (cached): ours (``012345``, mean+std), magpie,
    SOAP, matminer's SiteStatsFingerprint of CrystalNN fingerprints (the harness's ``site_stats_crystalnn``) and
    the authors' two released checkpoints (every layer, mean+std) when ``../shared/anchors/kong2023`` holds them."""

    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.bench.descriptors import HANDBUILT
    from ssl_featurizer.bench.families import CHECKPOINTS

    sub_seed = seed + 7  # another sample than the main one
    labels = prepare(n, sub_seed)
    structures = [corpus_structure(row) for row in sample_rows(n, sub_seed)]
    methods: dict[str, tuple[np.ndarray, bool]] = {
        f"ssl:{ALL_LAYERS}:mean-std": (np.load(CACHE / f"ssl_{n}_{sub_seed}.npy"), True),
        "magpie": (np.load(CACHE / f"magpie_{n}_{sub_seed}.npy"), True)}
    soap = prepare_soap(n, sub_seed)
    if soap is not None:
        methods["soap"] = (soap, True)
    cost = {}
    for name, make in (("site_stats_crystalnn", lambda: HANDBUILT["site_stats_crystalnn"](structures)),
                       *((f"authors {c}", (lambda f=f: SSLStructureFeaturizer(
                           model=f"kong2023:{anchors_dir() / f}", layers="0123", pooling=("mean", "std"),
                           ignore_errors=True).fit().transform(structures)))
                         for c, f in CHECKPOINTS.items() if (anchors_dir() / f).is_file())):
        path = CACHE / f"{name.replace(' ', '_')}_{n}_{sub_seed}.npy"
        if not path.exists():
            t0 = time.perf_counter()  # wall: matminer's featurizers may work in child processes
            with np.errstate(all="ignore"):
                np.save(path, np.asarray(make(), dtype=float))
            cost[name] = time.perf_counter() - t0
            print(f"{name} of {n}: {cost[name]:.0f} CPU s", flush=True)
        methods[name] = (np.load(path), True)
    cost_path = CACHE / f"slow_wall_seconds_{n}_{sub_seed}.json"
    cost = {**(json.loads(cost_path.read_text()) if cost_path.exists() else {}), **cost}
    cost_path.write_text(json.dumps(cost, indent=1) + "\n")
    frame, info = precision_at_k(labels, methods, n_queries, seed)
    info["cpu_seconds"] = cost
    return frame, info


def slow_summary(frame: pd.DataFrame) -> str:
    """One sentence: which descriptor of the slow sample retrieves the structure type best (mean of P@1, @5, @10),
    and where ours stands."""
    score = frame[[f"p@{k}" for k in KS]].mean(axis=1)
    order = frame.descriptor[score.sort_values(ascending=False).index].tolist()
    ours = next(d for d in order if d.startswith("ssl:"))
    return (f"Ranked by the mean of precision@1, @5 and @10: {', '.join(order)}; ours ranks {order.index(ours) + 1} "
            f"of {len(order)}.")


def retrieval_table(frame: pd.DataFrame, info: dict) -> str:
    lines = ["| descriptor | features | standardised | precision@1 | precision@5 | precision@10 |",
             "|---|---|---|---|---|---|"]
    for r in frame.to_dict("records"):
        lines.append(f"| {r['descriptor']} | {r['n_features']} | {'yes' if r['standardized'] else 'no'} | "
                     + " | ".join(f"{r[f'p@{k}']:.3f}" for k in KS) + " |")
    lines.append(f"| chance (share of same-type entries) | | | {info['chance']:.4f} | {info['chance']:.4f} | "
                 f"{info['chance']:.4f} |")
    return "\n".join(lines)


def recommended(frame: pd.DataFrame) -> str:
    """The standardised ssl layer set and pooling with the highest mean of precision@1, @5 and @10 (fewer
    features on a tie)."""
    ssl = frame[frame.descriptor.str.startswith("ssl:") & frame.standardized].copy()
    ssl["score"] = ssl[[f"p@{k}" for k in KS]].mean(axis=1).round(3)
    return ssl.sort_values(["score", "n_features"], ascending=[False, True]).iloc[0].descriptor


def figure(frame: pd.DataFrame, info: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KS), figsize=(4 * len(KS), 3.4), sharey=True)
    for ax, k in zip(axes, KS):
        for pooling, marker in (("mean", "o"), ("mean-std", "s")):
            part = frame[frame.descriptor.isin([f"ssl:{lay}:{pooling}" for lay in LAYER_SETS])]
            ax.plot(range(len(part)), part[f"p@{k}"], marker=marker, label=f"ours, {pooling}")
        magpie = frame.loc[frame.descriptor == "magpie", f"p@{k}"].iloc[0]
        ax.axhline(magpie, color="k", ls="--", lw=1, label="magpie")
        if (frame.descriptor == "soap").any():
            ax.axhline(frame.loc[frame.descriptor == "soap", f"p@{k}"].iloc[0], color="tab:red", ls="-.", lw=1,
                       label="SOAP")
        ax.axhline(info["chance"], color="grey", ls=":", lw=1, label="chance")
        ax.set_xticks(range(len(LAYER_SETS)), LAYER_SETS)
        ax.set_xlabel("layers")
        ax.set_title(f"precision@{k}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("same structure type")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{info['n_queries']} queries, index of {info['n_index']:,} MP structures", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


NEIGHBOURHOOD = ("SrTiO3 (perovskite)", "GaAs (zincblende)", "TiO2 (rutile)")


def neighbourhood_figure(labels: pd.DataFrame, x_ssl: np.ndarray, descriptor: str, width: int, path: Path,
                         k: int = 15) -> None:
    """PCA map of the ``k`` nearest sample structures of a few built-in crystals, coloured by structure type."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from sklearn.decomposition import PCA

    from ssl_featurizer import SSLStructureFeaturizer
    from ssl_featurizer.examples import example_structures
    from ssl_featurizer.similarity import SimilarityIndex

    cols, standardize = feature_sets(len(ALL_LAYERS), width)[descriptor]
    ok = np.isfinite(x_ssl).all(1)
    labels, X = labels[ok].reset_index(drop=True), x_ssl[ok][:, cols]
    kind = (labels.anonymized + " " + labels.spacegroup.astype(str)).to_numpy()
    index = SimilarityIndex.from_features(X, labels.id, labels.formula, standardize=standardize)
    crystals = example_structures()
    queries = [crystals[name] for name in NEIGHBOURHOOD]
    xq = SSLStructureFeaturizer(layers=ALL_LAYERS, pooling=("mean", "std")).fit_transform(queries)[:, cols]
    qkind = [f"{s.composition.anonymized_formula} {SpacegroupAnalyzer(s, symprec=0.1).get_space_group_number()}"
             for s in queries]
    _, pos = index.kneighbors(xq, k=k)
    points = np.vstack([index.vectors[pos.ravel()], index.transform(xq)])
    xy = PCA(n_components=2, random_state=0).fit_transform(points)
    types = pd.Series(kind[pos.ravel()]).value_counts()
    shown = list(dict.fromkeys(qkind + [t for t in types.index if t not in qkind]))[:10]  # the queries' types first
    colours = dict(zip(shown, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    markers = "osD"
    for q in range(len(queries)):
        block = xy[q * k:(q + 1) * k]
        for t in shown + ["other"]:
            sel = [i for i, p in enumerate(pos[q]) if (kind[p] if kind[p] in shown else "other") == t]
            if sel:
                ax.scatter(block[sel, 0], block[sel, 1], s=28, marker=markers[q], color=colours.get(t, "0.8"),
                           edgecolors="k", linewidths=0.3, label=t)
        qx, qy = xy[len(queries) * k + q]
        ax.scatter([qx], [qy], s=200, marker="*", color=colours[qkind[q]], edgecolors="k", zorder=5)
        same = sum(kind[p] == qkind[q] for p in pos[q])
        right = qx > np.median(xy[:, 0])
        ax.annotate(f"{NEIGHBOURHOOD[q]}\n{qkind[q]}: {same} of {k} neighbours", (qx, qy),
                    xytext=(-10 if right else 10, -4), textcoords="offset points", fontsize=8,
                    ha="right" if right else "left")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, title="structure type\n(anonymized formula,\nspace group)",
              title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"the {k} nearest of {len(labels):,} MP structures ({descriptor}); star: the query; "
                 "marker shape: whose neighbour", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def full_index_timing(path: Path, seed: int, n_queries: int = 200) -> dict:
    """Size of a saved index and the CPU and wall time of exact queries against it (one thread)."""
    from ssl_featurizer.similarity import SimilarityIndex

    t0 = time.perf_counter()
    index = SimilarityIndex.load(path)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(index), size=n_queries, replace=False)
    raw = index.vectors[picks].astype(float)
    if index.mean is not None:
        raw = raw * index.scale + index.mean
    index.kneighbors(raw[:3], k=10)  # warm-up
    single_cpu, single_wall = [], []
    for row in raw:
        c, w = time.process_time(), time.perf_counter()
        index.kneighbors(row[None], k=10)
        single_cpu.append(time.process_time() - c)
        single_wall.append(time.perf_counter() - w)
    c, w = time.process_time(), time.perf_counter()
    index.kneighbors(raw, k=10)
    batch_cpu, batch_wall = time.process_time() - c, time.perf_counter() - w
    meta = json.loads((path / "index.json").read_text())
    return {"n_entries": len(index), "n_features": index.n_features, "featurizer": meta["featurizer"],
            "size_mib": sum(p.stat().st_size for p in path.glob("index.*")) / 2**20, "load_s": load_s,
            "single_cpu_ms_median": 1e3 * float(np.median(single_cpu)),
            "single_wall_ms_median": 1e3 * float(np.median(single_wall)),
            "single_wall_ms_p95": 1e3 * float(np.percentile(single_wall, 95)),
            "batch_cpu_ms_per_query": 1e3 * batch_cpu / n_queries,
            "batch_wall_ms_per_query": 1e3 * batch_wall / n_queries,
            "n_queries": n_queries}


def timing_text(t: dict, build: dict | None) -> str:
    f = t["featurizer"]
    what = f"layers {''.join(map(str, f['layers']))}, pooling {'+'.join(f['pooling'])}" if f else "external features"
    built = (" Building it (`build_index`, the function behind `ssl-featurizer index`) took "
             f"{build['seconds'] / 60:.0f} min of wall time, {build['cpu_seconds'] / 60:.0f} min of CPU, on one "
             "thread of a shared machine "
             f"({build['failures']} structures could not be featurized and are not indexed)." if build else "")
    goal = 50.0
    verdict = (f" That meets the goal of {goal:.0f} ms per query on one core, so no approximate-neighbour library "
               "(hnswlib, faiss) is used." if t["single_cpu_ms_median"] <= goal else
               f" That misses the goal of {goal:.0f} ms per query on one core.")
    return (f"The whole corpus: {t['n_entries']:,} entries × {t['n_features']} features ({what}), "
            f"{t['size_mib']:.0f} MiB on disk, loaded in {t['load_s']:.1f} s.{built} An exact query for the 10 "
            f"nearest takes {t['single_wall_ms_median']:.0f} ms (median wall time over {t['n_queries']} queries; "
            f"{t['single_cpu_ms_median']:.0f} ms CPU; 95th percentile {t['single_wall_ms_p95']:.0f} ms) on one "
            f"thread; {t['n_queries']} queries at once take {t['batch_wall_ms_per_query']:.1f} ms each. "
            "Featurizing a query structure adds a few ms ([performance](performance.md))." + verdict)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--n-index", type=int, default=25000, help="corpus structures indexed")
    parser.add_argument("--n-queries", type=int, default=2000, help="queries, stratified by crystal system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prepare-only", action="store_true", help="compute and cache descriptors and labels")
    parser.add_argument("--no-soap", action="store_true", help="leave out the SOAP baseline (needs dscribe)")
    parser.add_argument("--skip-retrieval", action="store_true", help="only the full-index timing")
    parser.add_argument("--full-index", type=Path, default=None,
                        help="an index of the whole corpus (ssl-featurizer index) to time queries against")
    parser.add_argument("--build", action="store_true", help="build --full-index first (timed)")
    parser.add_argument("--layers", default="012345", help="layers of the index built by --build")
    parser.add_argument("--pooling", default="mean-std", help="pooling of the index built by --build")
    parser.add_argument("--slow", type=int, default=0, metavar="N",
                        help="also the slow descriptors (SiteStats(CrystalNN), the authors' checkpoints) on a "
                             "separate sample of N structures (0: not run)")
    parser.add_argument("--slow-queries", type=int, default=300, help="queries of the --slow sample")
    args = parser.parse_args()
    if args.slow:
        frame, info = slow_subset(args.slow, args.slow_queries, args.seed)
        frame.to_csv(FIGURES / "similarity_retrieval_slow.csv", index=False)
        body = retrieval_table(frame, info) + (
            f"\n\nA separate sample: {info['n_index']:,} corpus structures (seed {args.seed + 7}; {info['n_dropped']} "
            f"left out: symmetry or a descriptor failed), {info['n_types']:,} structure types, {info['n_queries']} "
            f"queries stratified by crystal system; {100 * info['with_a_same_type_entry']:.1f} % of them have another "
            "entry of their type. Wall time of the slow descriptors on this sample (shared 2-core machine): "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in info["cpu_seconds"].items()) + ". "
            + slow_summary(frame))
        write_block(PAGE, "retrieval_slow", body)
        print(body)
        if args.skip_retrieval or args.full_index is None:
            return
    if args.full_index is not None:
        results = ROOT / "studies" / "results" / "similarity"
        results.mkdir(parents=True, exist_ok=True)
        build = json.loads((results / "full_index_build.json").read_text()) if (
            results / "full_index_build.json").exists() else None
        if args.build:
            from ssl_featurizer.similarity import build_index

            c = time.process_time()
            index, seconds = build_index(CORPUS, args.full_index, layers=args.layers,
                                         pooling=tuple(args.pooling.split("-")), progress=False)
            build = {"seconds": seconds, "cpu_seconds": time.process_time() - c, "failures": len(index.failures),
                     "layers": args.layers, "pooling": args.pooling}
            (results / "full_index_build.json").write_text(json.dumps(build, indent=1) + "\n")
        timing = full_index_timing(args.full_index, args.seed)
        (results / "full_index_timing.json").write_text(json.dumps(timing, indent=1) + "\n")
        write_block(PAGE, "query_time", timing_text(timing, build))
        print(timing_text(timing, build))
    if args.skip_retrieval:
        return
    labels = prepare(args.n_index, args.seed)
    print(labels.crystal_system.value_counts().to_string())
    if args.prepare_only:
        return
    from ssl_featurizer.models.registry import load_model

    x_ssl = np.load(CACHE / f"ssl_{args.n_index}_{args.seed}.npy")
    x_magpie = np.load(CACHE / f"magpie_{args.n_index}_{args.seed}.npy")
    x_soap = None if args.no_soap else prepare_soap(args.n_index, args.seed)
    frame, info = retrieval(labels, x_ssl, x_magpie, args.n_queries, args.seed, load_model("default").width, x_soap)
    FIGURES.mkdir(parents=True, exist_ok=True)
    frame.to_csv(FIGURES / "similarity_retrieval.csv", index=False)
    (FIGURES / "similarity_retrieval.json").write_text(json.dumps(info, indent=1) + "\n")
    figure(frame, info, FIGURES / "similarity_retrieval.png")
    best = recommended(frame)
    body = retrieval_table(frame, info) + (
        f"\n\nIndex: {info['n_index']:,} corpus structures (seed {args.seed}; {info['n_dropped']} left out: "
        f"symmetry or a descriptor failed), {info['n_types']:,} structure types; {info['n_queries']:,} queries "
        f"stratified by crystal system ({', '.join(f'{k} {v}' for k, v in sorted(info['systems'].items()))}). "
        f"{100 * info['with_a_same_type_entry']:.1f} % of the queries have at least one other entry of their "
        f"structure type in the index (the ceiling of precision@1). Highest mean of precision@1, @5 and @10: "
        f"**{best}**.")
    write_block(PAGE, "retrieval", body)
    print(body)
    neighbourhood_figure(labels, x_ssl, best, load_model("default").width, FIGURES / "similarity_neighbourhood.png")


if __name__ == "__main__":
    main()
