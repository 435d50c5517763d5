"""Pretrained self-supervised crystal-GNN descriptors from the shell.

commands:
  demo       featurize built-in crystals offline; print a summary, write parquet + figure
  featurize  featurize a folder or file of structures into a parquet dataset (chunked, resumable)
  index      build a similarity index of known structures (exact nearest-neighbour search)
  similar    the known structures most similar to query structures (needs an index)
  models     list the shipped pretrained models and the foreign encoders
  bench      compare descriptor families on labelled structures (nested choice, corrected t-test)
  pretrain   self-supervised pretraining on a JSON-lines structure corpus
  export     export a pretraining run as a model directory (weights + card)

Run "ssl-featurizer COMMAND --help" for a command's options. Errors print one line;
--debug (before or after COMMAND) prints the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

_SHOWN_REASONS = 3  # failure reasons printed after `featurize`; the errors file lists them all


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from ssl_featurizer.encoder.model import EncoderConfig
    from ssl_featurizer.graph.crystal_graph import GraphConfig
    from ssl_featurizer.models.catalog import read_card
    from ssl_featurizer.training import objectives
    from ssl_featurizer.training.cache import GraphStore, build_graph_cache, views_cache_dir
    from ssl_featurizer.training.distributed import finish_distributed, init_distributed
    from ssl_featurizer.training.trainer import (
        EXCLUDED,
        Pretrainer,
        TrainConfig,
        ids_digest,
        initial_weights,
        read_ids,
    )

    if not Path(args.data).is_file():
        raise FileNotFoundError(f"--data {args.data}: no such file")
    excluded = None
    if args.exclude_ids:
        if not Path(args.exclude_ids).is_file():
            raise SystemExit(f"ssl-featurizer pretrain: --exclude-ids {args.exclude_ids}: no such file")
        excluded = read_ids(args.exclude_ids)
        kept = Path(args.out) / EXCLUDED
        if kept.exists() and ids_digest(read_ids(kept)) != ids_digest(excluded):
            raise SystemExit(f"ssl-featurizer pretrain: {kept} lists other ids than --exclude-ids; use a new --out")
        kept.parent.mkdir(parents=True, exist_ok=True)
        temporary = kept.with_name(f".{EXCLUDED}.{os.getpid()}")  # every rank writes the same list, atomically
        temporary.write_text("\n".join(sorted(set(excluded))) + "\n")
        os.replace(temporary, kept)
    rank, _ = init_distributed()  # data-parallel under torchrun (docs/performance.md)
    chosen = objectives.config_from_args(args)
    built = chosen.build()
    if args.angular_channels < 0:
        raise SystemExit(f"ssl-featurizer pretrain: --angular-channels {args.angular_channels}: must be ≥ 0")
    angular = args.angular_channels > 0  # an encoder that reads bond angles needs the edge vectors, in views too
    from ssl_featurizer.graph.elements import load_element_table

    n_node_features = load_element_table(args.element_table).n_features
    cfg = TrainConfig(
        element_table=args.element_table, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        val_fraction=args.val_fraction, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        max_steps=args.max_steps, threads=args.threads, warmup_steps=args.warmup_steps,
        encoder=EncoderConfig(n_node_features=n_node_features, width=args.width, n_layers=args.depth,
                              angular_channels=args.angular_channels),
        objectives=chosen, excluded_ids_sha256=ids_digest(excluded) if excluded is not None else None,
        init_from=args.init_from,
        init_weights_sha256=read_card(args.init_from)["weights"]["sha256"] if args.init_from else None,
    )
    if cfg.init_from is not None:
        initial_weights(cfg)  # refuse a model of another encoder or element table before any training
    cache = build_graph_cache(args.data, args.cache_dir, GraphConfig(), n_jobs=args.jobs, limit=args.limit,
                              vectors=angular or any(o.needs_vectors for o in built))
    store = GraphStore.load(cache)
    views = None
    if any(o.needs_views for o in built):
        views_dir = args.views_cache_dir or views_cache_dir(args.cache_dir)
        views = GraphStore.load(build_graph_cache(args.data, views_dir, GraphConfig(), n_jobs=args.jobs,
                                                  limit=args.limit, supercell=True, vectors=angular))
    trainer = Pretrainer(store, args.out, cfg, views=views)
    if rank == 0:
        print(f"{len(trainer.train_idx)} training / {len(trainer.val_idx)} held-out structures, "
              f"{trainer.steps_per_epoch} steps per epoch", file=sys.stderr)
    metrics = trainer.train(resume=args.resume)
    if rank == 0:
        print(json.dumps(metrics, indent=1))
    finish_distributed()
    return 0


def _check_model_and_layers(model: str, layers: str) -> None:
    """Refuse an unknown model or a layer set it does not have from its card, before any weights (or torch)
    are loaded (ModelError / ValueError: one line)."""
    from ssl_featurizer.layer_sets import parse_layers
    from ssl_featurizer.models.catalog import FOREIGN_MODELS, read_card

    if model.startswith("kong2023:") or model in FOREIGN_MODELS:
        return  # the authors' checkpoints and foreign encoders have no card file: checked when loaded
    parse_layers(layers, int(read_card(model)["encoder"]["n_layers"]))


def _cmd_featurize(args: argparse.Namespace) -> int:
    from ssl_featurizer.pooling import parse_pooling
    from ssl_featurizer.stream import ERRORS, StreamError, StreamLockedError, featurize_to_parquet, read_errors

    pooling = parse_pooling(args.pooling)
    _check_model_and_layers(args.model, args.layers)
    try:
        summary = featurize_to_parquet(args.input, args.out, model=args.model, layers=args.layers,
                                       pooling=pooling, chunk_size=args.chunk_size,
                                       batch_size=args.batch_size, limit=args.limit, fmt=args.format,
                                       n_jobs=args.n_jobs, overwrite=args.overwrite, progress=not args.quiet)
    except StreamLockedError as exc:
        print(f"ssl-featurizer featurize: {exc}", file=sys.stderr)
        return 3
    except StreamError as exc:  # the shell spelling of the remedy
        raise StreamError(str(exc).replace("overwrite=True", "--overwrite")) from None
    resumed = f" (resumed after {summary.resumed_from})" if summary.resumed_from else ""
    n_bad = summary.n_failed - summary.n_skipped
    print(f"{summary.n_ok} structures featurized, {n_bad} failed, {summary.n_skipped} non-structure files "
          f"skipped; {summary.n_parts} part files in {summary.out}{resumed}; {summary.seconds:.1f} s", file=sys.stderr)
    if summary.n_failed:
        records = read_errors(summary.out)
        for record in records[:_SHOWN_REASONS]:
            print(f"  {record['id']}: {record['reason']}", file=sys.stderr)
        more = f"{len(records) - _SHOWN_REASONS} more; " if len(records) > _SHOWN_REASONS else ""
        print(f"  ({more}all listed with their reasons in {summary.out / ERRORS})", file=sys.stderr)
    if summary.n_ok == 0:
        what = "every input failed" if summary.n_read else "the input holds no structure"
        print(f"ssl-featurizer featurize: error: no structure was featurized ({what})", file=sys.stderr)
        return 1
    return 0


def _cmd_index(args: argparse.Namespace) -> int:
    from ssl_featurizer.pooling import parse_pooling
    from ssl_featurizer.similarity import build_index
    from ssl_featurizer.stream import StreamLockedError

    try:
        index, seconds = build_index(args.input, args.out, layers=args.layers, pooling=parse_pooling(args.pooling),
                                     model=args.model, standardize=not args.no_standardize,
                                     chunk_size=args.chunk_size, batch_size=args.batch_size, n_jobs=args.n_jobs,
                                     limit=args.limit, fmt=args.format, keep_features=args.keep_features,
                                     progress=not args.quiet)
    except StreamLockedError as exc:
        print(f"ssl-featurizer index: {exc}", file=sys.stderr)
        return 3
    size = sum(p.stat().st_size for p in Path(args.out).glob("index.*"))
    print(f"{index!r}: {len(index.failures)} structures not indexed; {size / 2**20:.1f} MiB in {args.out}; "
          f"{seconds:.1f} s", file=sys.stderr)
    return 0


def _cmd_similar(args: argparse.Namespace) -> int:
    import pandas as pd

    from ssl_featurizer.readers import iter_records
    from ssl_featurizer.similarity import SimilarityIndex

    index = SimilarityIndex.load(args.index)
    records = list(iter_records(args.query, args.format))
    bad = [r for r in records if r.structure is None]
    for record in bad[:_SHOWN_REASONS]:
        print(f"  {record.id}: {record.error}", file=sys.stderr)
    good = [r for r in records if r.structure is not None]
    if not good:
        raise ValueError(f"{args.query}: no readable structure ({len(bad)} failed)")
    table = index.query([r.structure for r in good], k=min(args.k, len(index)), labels=[r.id for r in good])
    if args.out:
        table.to_csv(args.out, index=False)
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ssl_featurizer.training.export import export_run

    card = export_run(args.run, args.cache_dir, args.out, args.name, args.version, args.description,
                      views_dir=args.views_cache_dir, corpus_description=args.corpus_description)
    print(json.dumps(card["metrics"], indent=1))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ssl_featurizer.demo import run_demo
    from ssl_featurizer.pooling import parse_pooling

    _check_model_and_layers(args.model, args.layers)
    run_demo(args.out, model=args.model, layers=args.layers, pooling=parse_pooling(args.pooling))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from ssl_featurizer.models.registry import DEFAULT_MODEL, list_foreign_models, list_models, load_model

    for name in list_models():
        card = load_model(name).card
        tag = "  (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{tag}: {card['encoder']['n_layers']} layers × {card['encoder']['width']}, "
              f"{card['training']['epochs']:.2f} epochs on {card['training']['corpus']}, "
              f"val group acc {card['metrics'].get('val_group_acc', float('nan')):.3f}")
    installed = set(list_foreign_models())
    print("foreign encoders (supervised; optional extra: pip install 'ssl-featurizer[peer]'; docs/encoders.md):")
    for name in list_foreign_models(installed=False):
        print(f"  {name}: {'installed' if name in installed else 'not installed'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    data = args.data or args.task
    if data is None:
        raise ValueError("give DATA: a .json/.csv/.jsonl file, or a folder with --labels")
    if args.exploratory:
        return _bench_exploratory(args, data)
    given = [flag for flag, value in (("--descriptors", args.descriptors), ("--regressors", args.regressors),
                                      ("--seeds", args.seeds)) if value is not None]
    if given:
        raise ValueError(f"{', '.join(given)} belong to the exploratory table (scored on test rows, never a "
                         "verdict): add --exploratory, or leave them out for the nested comparison")
    from ssl_featurizer.bench.comparison import compare, load_table

    task = load_table(data, args.target, args.structure_column, args.labels, args.site_index, args.group,
                      limit=args.limit or None)
    families = tuple(f for f in args.families.split(",") if f)
    report = compare(task, families=families, model=args.model, authors=args.authors, slow=args.slow,
                     repeats=args.repeats, folds=args.folds, out=args.out, cache_dir=args.cache_dir,
                     estimate=not args.no_estimate, progress=not args.quiet,
                     log=lambda line: print(line, file=sys.stderr, flush=True))
    print(report.markdown())
    return 0


def _bench_exploratory(args: argparse.Namespace, data: str) -> int:
    """The exploratory table: every descriptor × regressor scored on the test rows (never a verdict)."""
    from ssl_featurizer.bench import load_table, run_benchmark
    from ssl_featurizer.bench.report import markdown_table, summarise

    task = load_table(data, args.target, args.structure_column, args.labels, args.site_index, args.group,
                      limit=args.limit or None)
    seeds_arg = args.seeds or "3"
    seeds = [int(s) for s in seeds_arg.split(",")] if "," in seeds_arg else int(seeds_arg)
    results = run_benchmark(task, (args.descriptors or "ssl:0,ssl:01,ssl:012,magpie").split(","),
                            tuple((args.regressors or "krr,rf,gbr").split(",")), seeds, out=args.out,
                            cache_dir=args.cache_dir, model=args.model, n_jobs=args.n_jobs)
    print("EXPLORATORY: every descriptor × regressor scored on the test rows; picking the lowest is a choice made on "
          "test data, not a verdict (run without --exploratory for the nested comparison)\n")
    print(markdown_table(summarise(results)))
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Plain-text description; every option's help ends with its default unless the help states it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="on an error, print the full traceback instead of one line")


def _add_descriptor_options(p: argparse.ArgumentParser, model_help: str, layers: str, pooling: str,
                            layers_note: str) -> None:
    """The options naming a pooled descriptor (``featurize`` and ``index``): model, layers and pooling."""
    p.add_argument("--model", default="default", help=model_help)
    p.add_argument("--layers", default=layers, help=f"encoder layers, the paper's string: 0, 01, 012, ... ({layers_note})")
    p.add_argument("--pooling", default=pooling, help="pooling(s) joined by -, e.g. mean or mean-std")


def _add_stream_options(p: argparse.ArgumentParser) -> None:
    """The options of a streamed featurization (``featurize`` and ``index``)."""
    p.add_argument("--chunk-size", type=int, default=1000, help="structures per part file / resume step")
    p.add_argument("--batch-size", type=int, default=64, help="structures per forward pass")
    p.add_argument("--limit", type=int, default=None, help="stop after N structures (default: all)")
    p.add_argument("--format", default=None, choices=["cif", "poscar", "jsonl", "json", "extxyz"],
                   help="format of a single input file (default: from its name)")
    p.add_argument("--n-jobs", type=int, default=1, help="processes building graphs")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from ssl_featurizer import __version__
    from ssl_featurizer.featurizers import DEFAULT_LAYERS
    from ssl_featurizer.models.catalog import DEFAULT_MODEL
    from ssl_featurizer.similarity import SEARCH_LAYERS, SEARCH_POOLING
    from ssl_featurizer.training import objectives

    parser = argparse.ArgumentParser(prog="ssl-featurizer", description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_debug(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="one of the commands above")

    def add(name: str, description: str) -> argparse.ArgumentParser:
        # no help=: the module docstring (the description above) lists the commands once
        p = sub.add_parser(name, description=description, formatter_class=_HelpFormatter)
        _add_debug(p, default=argparse.SUPPRESS)  # also accepted after COMMAND
        return p

    model_help = ("pretrained model: a name from `ssl-featurizer models` (a foreign encoder such as sevennet-0 too), "
                  f"name@version, or a model directory (default: the registry's default, {DEFAULT_MODEL})")
    p = add("demo", "featurize built-in crystals offline; print a summary, write parquet + figure")
    p.add_argument("--out", default="ssl_demo", help="output folder")
    p.add_argument("--model", default="default", help=model_help)
    p.add_argument("--layers", default=DEFAULT_LAYERS, help="encoder layers, the paper's string: 0, 01, 012, ...")
    p.add_argument("--pooling", default="mean", help="pooling(s) joined by -, e.g. mean or mean-std")
    p.set_defaults(func=_cmd_demo)

    p = add("bench", "compare descriptor families on labelled structures: configurations chosen on training rows "
            "only (nested), repeated k-fold, corrected resampled t-test, Holm-adjusted verdicts")
    p.add_argument("data", nargs="?", default=None,
                   help="a matminer JSON dataframe (.json/.json.gz), a CSV with a column of structure JSON text, a "
                        "JSON-lines file of {structure, target} objects, or a folder of structure files (with --labels)")
    p.add_argument("--task", default=None, help="the same as DATA, kept for older command lines (default: none)")
    p.add_argument("--target", default=None, help="target column (default: the only numeric column of a matminer "
                   "JSON dataframe; needed for other files)")
    p.add_argument("--structure-column", default="structure", help="column of the structures")
    p.add_argument("--labels", default=None, help="with a folder of structure files: a CSV id,target (id: the file's "
                   "path relative to the folder, with or without extension, or its name without extension; default: none)")
    p.add_argument("--site-index", default=None, help="column of site indices: a site task, split by structure (default: none, a structure task)")
    p.add_argument("--group", default=None, help="column naming each row's material (site tasks; default: by "
                   "structure)")
    p.add_argument("--families", default="ssl,handbuilt,peer",
                   help="comma-separated: ssl, handbuilt, peer (foreign encoders, when installed), authors (needs "
                        "--authors), ssl_inductive, distilled (the shipped distilled model: learned from SevenNet-0, "
                        "not self-supervised)")
    p.add_argument("--authors", default=None, help="folder of Kong et al.'s cgcnn_60k_pred.pth and "
                   "cgcnn_60k_contra.pth (for the authors family; default: none)")
    p.add_argument("--slow", action="store_true", help="add the slow hand-built descriptors (ofm about 1 s, "
                   "site_stats_crystalnn about 0.4 s per structure)")
    p.add_argument("--repeats", type=int, default=2, help="repeats of the outer k-fold")
    p.add_argument("--folds", type=int, default=5, help="outer folds per repeat")
    p.add_argument("--out", default="bench_report", help="output folder (report.md, CSV, JSON, figures, feature "
                   "cache); rerunning into it resumes")
    p.add_argument("--cache-dir", default=None, help="feature cache (default: OUT/features)")
    p.add_argument("--model", default="default", help=model_help)
    p.add_argument("--limit", type=int, default=None, help="a random sample of about N rows, drawn before decoding "
                   "where it can be (default: all rows)")
    p.add_argument("--no-estimate", action="store_true", help="skip the cost estimate")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--exploratory", action="store_true",
                   help="instead: the exploratory table, every --descriptors × --regressors scored on test rows of "
                        "random 80/20 splits (a choice made on test data, never a verdict)")
    p.add_argument("--descriptors", default=None, help="exploratory only: comma-separated specs (default "
                   "ssl:0,ssl:01,ssl:012,magpie), e.g. ssl:012:mean-std,magpie,ssl:012+magpie")
    p.add_argument("--regressors", default=None,
                   help="exploratory only: krr, rf, gbr (default krr,rf,gbr); for strictly positive targets, fitted "
                        "to log y: krr_log, gbr_l1_log, ensemble_log")
    p.add_argument("--seeds", default=None, help="exploratory only: number of random 80/20 splits (default 3), or a "
                   "comma-separated seed list")
    p.add_argument("--n-jobs", type=int, default=1, help="exploratory only: parallel splits")
    p.set_defaults(func=_cmd_bench)

    p = add("featurize", "featurize a folder or file of structures into a parquet dataset (chunked, resumable, "
            "errors file)")
    p.add_argument("input", help="folder of CIF/POSCAR/JSON/extxyz files, or one .cif/.json/.jsonl(.gz)/.extxyz file")
    p.add_argument("-o", "--out", required=True, help="output folder, e.g. features.parquet (read it with "
                   "pandas.read_parquet); rerunning the same command resumes it")
    _add_descriptor_options(p, model_help, DEFAULT_LAYERS, "mean",
                            "layers from 10 on: comma-separated, e.g. 0,1,10")
    _add_stream_options(p)
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_featurize)

    p = add("index", "build a similarity index of known structures (exact nearest-neighbour search); read it "
            "with `ssl-featurizer similar` or SimilarityIndex.load")
    p.add_argument("input", help="structures as for `featurize` (streamed into OUT/features.parquet, resumable), "
                   "or an existing `ssl-featurizer featurize` output folder")
    p.add_argument("-o", "--out", required=True, help="index folder (index.npz + index.json)")
    _add_descriptor_options(p, model_help, SEARCH_LAYERS, "-".join(SEARCH_POOLING),
                            "the default retrieved structure types best, docs/similarity.md")
    p.add_argument("--no-standardize", action="store_true", help="index raw descriptors instead of z-scores")
    _add_stream_options(p)
    p.add_argument("--keep-features", action="store_true", help="keep OUT/features.parquet after indexing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_index)

    p = add("similar", "the known structures most similar to query structures, from an index built by "
            "`ssl-featurizer index`")
    p.add_argument("query", help="structure file or folder (CIF, POSCAR, JSON(L), extxyz)")
    p.add_argument("--index", required=True, help="index folder written by `ssl-featurizer index`")
    p.add_argument("--k", type=int, default=10, help="neighbours per query structure")
    p.add_argument("--format", default=None, choices=["cif", "poscar", "jsonl", "json", "extxyz"],
                   help="format of a single query file (default: from its name)")
    p.add_argument("--out", default=None, help="also write the table as CSV (default: print only)")
    p.set_defaults(func=_cmd_similar)

    p = add("models", "list the shipped pretrained models and the foreign encoders")
    p.set_defaults(func=_cmd_models)

    p = add("pretrain", "self-supervised pretraining on a JSON-lines structure corpus")
    p.add_argument("--data", required=True, help="corpus: a JSON-lines file of structures, e.g. structures.jsonl.gz")
    p.add_argument("--cache-dir", required=True, help="where the graph cache is built (reused if present)")
    p.add_argument("--out", required=True, help="run directory (checkpoint.pt, history.csv)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the training structures")
    p.add_argument("--batch-size", type=int, default=128, help="structures per step")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--warmup-steps", type=int, default=200, help="steps of linear learning-rate warm-up")
    p.add_argument("--width", type=int, default=64, help="encoder width (features per atom and layer)")
    p.add_argument("--depth", type=int, default=5, help="number of graph-convolution layers")
    p.add_argument("--angular-channels", type=int, default=0,
                   help="channels of the bond-angle moments before every convolution (0: off, a distance-only "
                        "encoder; > 0 builds the graph cache with edge vectors)")
    p.add_argument("--element-table", default="v1", choices=["v1", "v2"],
                   help="node input table (v2 adds valence-shell occupations; docs/graph.md)")
    objectives.add_arguments(p)  # each pretraining objective's flags (ssl_featurizer.training.objectives)
    p.add_argument("--views-cache-dir", default=None,
                   help="supercell graph cache for --contrastive (default: <cache-dir>-supercell)")
    p.add_argument("--val-fraction", type=float, default=0.025, help="held-out share (by id hash)")
    p.add_argument("--seed", type=int, default=0, help="random seed (initialisation, masking, batches)")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--eval-every", type=int, default=400, help="steps between held-out evaluations")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N steps (default: after --epochs)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N structures (default: all)")
    p.add_argument("--exclude-ids", default=None, metavar="FILE",
                   help="leave out the corpus ids listed in FILE (one per line), e.g. every benchmark structure "
                        "(studies/overlap.py) for an inductive control; the list is kept in --out "
                        "(default: none)")
    p.add_argument("--jobs", type=int, default=1, help="processes for building the graph cache")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from a shipped model (name@version) or model directory instead of random weights: "
                        "its encoder and the pretext heads of the same objectives (a continuation; the encoder "
                        "and element-table options must match it; default: random)")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.set_defaults(func=_cmd_pretrain)

    p = add("export", "export a pretraining run as a model directory (weights + card)")
    p.add_argument("--run", required=True, help="run directory of `ssl-featurizer pretrain` (its --out)")
    p.add_argument("--cache-dir", required=True, help="the run's graph cache (its --cache-dir)")
    p.add_argument("--out", required=True, help="model directory to write, e.g. pretrained/<name>/<version>")
    p.add_argument("--name", required=True, help="model name")
    p.add_argument("--version", required=True, help="model version, e.g. 1.0")
    p.add_argument("--description", default="", help="one line for the model card (default: empty)")
    p.add_argument("--corpus-description", default=None,
                   help="what the corpus is (source, licence, overlap with benchmark tasks), for the model card "
                        "(default: none)")
    p.add_argument("--views-cache-dir", default=None,
                   help="supercell view cache of a --contrastive run (default: <cache-dir>-supercell)")
    p.set_defaults(func=_cmd_export)
    return parser


#: What to tell a user who pressed Ctrl-C, by command.
_RESUME_HINTS = {
    "featurize": "finished chunks are kept; rerun the same command to resume",
    "pretrain": "rerun the same command with --resume to continue from the last checkpoint",
    "bench": "computed descriptors are kept in the feature cache; rerun the same command to reuse them",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that report a problem with the user's input or settings, not a bug."""
    from ssl_featurizer.stream import StreamError

    errors: list[type[BaseException]] = [OSError, ValueError, StreamError]
    if "ssl_featurizer.training.trainer" in sys.modules:  # loaded only by the commands that can raise it
        errors.append(sys.modules["ssl_featurizer.training.trainer"].CheckpointError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ssl-featurizer`` console script.

    A user error (missing input, invalid option value, an output or checkpoint written with other
    settings) prints one line on stderr and returns 2; Ctrl-C says how to resume and returns 130.
    ``--debug`` lets the exception and its traceback through instead.
    """
    args = build_parser().parse_args(argv)
    prefix = f"ssl-featurizer {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        hint = _RESUME_HINTS.get(args.command, "nothing to resume; rerun the command")
        print(f"\n{prefix}: interrupted; {hint}", file=sys.stderr)  # on its own line, after any progress bar
        return 130
    except Exception as exc:
        if args.debug or not isinstance(exc, _user_errors()):
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prefix}: error: {message} (--debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
