"""The exploratory tables of docs/benchmarks.md on the project's tasks: every descriptor × regressor scored on the
test rows of the task's splits (random 80/20 splits, or the official folds of a matbench task). A choice made on
test data: never a verdict (the verdicts are ``studies/verdicts.py``).

The library's ``ssl-featurizer bench DATA --exploratory`` does the same on a user's file; this script gives it the
project's named tasks (:mod:`project_tasks`), with their folds and site groups. Resumable: features in the cache,
scores in ``<out>/results.csv``.

    MATMINER_DATA=../shared/data/matminer python studies/exploratory.py --task matbench_dielectric \\
        --descriptors ssl:012,magpie --regressors krr --out studies/results/matbench_dielectric
"""

from __future__ import annotations

from common import script_parser
from project_tasks import TASK_NAMES, load_task


def main(argv: list[str] | None = None) -> None:
    cli = script_parser(__doc__, cache_dir=True, seeds=True)
    cli.add_argument("--task", required=True, choices=TASK_NAMES, help="the project's task")
    cli.add_argument("--descriptors", default="ssl:0,ssl:01,ssl:012,magpie", help="comma-separated specs")
    cli.add_argument("--regressors", default="krr,rf,gbr", help="comma-separated regressors")
    cli.add_argument("--out", required=True, help="results folder")
    cli.add_argument("--model", default="default", help="pretrained model of the ssl descriptors")
    cli.add_argument("--limit", type=int, default=None, help="random subset of N rows (default: all)")
    cli.add_argument("--n-jobs", type=int, default=1, help="parallel splits")
    args = cli.parse_args(argv)

    from ssl_featurizer.bench import run_benchmark
    from ssl_featurizer.bench.report import markdown_table, summarise

    task = load_task(args.task)
    if args.limit:
        task = task.subset(args.limit)
    results = run_benchmark(task, args.descriptors.split(","), tuple(args.regressors.split(",")), args.seeds,
                            out=args.out, cache_dir=args.cache_dir, model=args.model, n_jobs=args.n_jobs)
    print("EXPLORATORY (scored on test rows; never a verdict)\n")
    print(markdown_table(summarise(results)))


if __name__ == "__main__":
    main()
