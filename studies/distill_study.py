"""Short pretraining runs on development data, each differing from the 2.0 control recipe in one thing:
distillation from SevenNet-0, bond-angle moments, width or depth (and, through ``--every``, the corpus fraction).

Every run starts from scratch on the same corpus subset (every ``--every``-th structure of the corpus) with the 2.0
recipe (element table v2, 5 × 64 CGCNN, masked atoms + edge bins + denoising σ = 0.1 Å), the same seed, batch and
number of epochs; :data:`RUNS` says what each changes:

- ``control``: nothing (the reference of every other run);
- ``distilled``: adds the distill objective, whose targets are SevenNet-0's per-atom scalars after every interaction
  block (first ``--dims`` principal components), computed once on the subset
  (:func:`ssl_featurizer.training.teacher.build_teacher_targets`);
- ``angular``: bond-angle moments (16 channels, degrees 0–4) before every convolution
  (:class:`ssl_featurizer.encoder.layers.AngularMoments`);
- ``width128`` / ``depth7`` / ``epochs48``: the scaling axes of width, depth and training length (48 epochs: 3
  times the control's steps, its learning-rate schedule stretched to them);
- ``distilled_w3`` / ``denoise_w3``: the objective-weight axis, the distillation loss (with the distill
  objective) or the coordinate-denoising loss weighted 3 instead of 1;
- ``continued`` / ``continued_distilled``: the run these point to, on a larger subset (``--every 8``): the shipped
  2.0 model trained 2 more epochs (:data:`CONTINUATION`) with its own objectives, or with distillation from
  SevenNet-0 added — the equal-step pair that says what the teacher adds beyond more training;
  ``continued_distilled_inductive``: its inductive control (the inductive 2.0 model, the benchmark structures left
  out as for it);
- ``angular_distilled_w3`` / ``width128_distilled_w3``: the student-capacity probe (``--every 8 --epochs 3``, beside
  ``control`` and ``distilled_w3`` on the same subset and steps): does a student that sees bond angles, or a wider
  one, take more from the teacher (held-out unexplained share of its variance) and describe materials better?
- ``long_control`` / ``long_distilled_w3``: the control and ``distilled_w3`` recipes from scratch on the same subset
  (``--every 8``) for 12 epochs, 4 times the probe's steps: the distilled recipe's compute curve, and a candidate
  that ships beside the default if it passes the declared development choice (``long_distilled_w3_inductive``:
  its inductive control, every benchmark structure left out, trained only then);
- ``positions``: adds position denoising (each displaced atom predicts its way back, an equivariant target that
  asks for directions: :mod:`ssl_featurizer.training.objectives.positions`); ``angular_positions``: both the
  bond-angle moments and that target.

Each is exported under ``studies/results/distill_study/models/<run>_every<N>`` and scored by
``studies/gap_study.py`` (families ``short-<run>`` for ``--every 40``; ``corpus-every<N>``: the control recipe at the
same number of steps on other corpus fractions), beside the default and SevenNet-0 itself. Every stage resumes where
it stopped.

    OMP_NUM_THREADS=1 python studies/distill_study.py --every 40 --epochs 16 --runs control,angular
    python studies/gap_study.py --families short-control,short-angular
"""

from __future__ import annotations

import gzip
import itertools
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import script_parser

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "studies" / "cache" / "distill_study"  # corpus subset, graph cache, targets, runs: not committed
MODELS = ROOT / "studies" / "results" / "distill_study" / "models"
#: the continuation recipe: 2.0's weights (encoder and pretext heads), 2 epochs at a quarter of 2.0's peak learning
#: rate after a short warm-up (the schedule of a run that starts trained); ``--init-from`` given again later wins
CONTINUATION = ["--init-from", "cgcnn-ssl-mp2025@2.0", "--epochs", "2", "--lr", "5e-4", "--warmup-steps", "50"]
#: the benchmark structures the inductive controls leave out (those of the inductive 2.0 model)
INDUCTIVE_IDS = "pretrained/cgcnn-ssl-mp2025-inductive/2.0/excluded_ids.txt"
#: what each run adds to the control recipe (``distilled*`` also get ``--distill-targets``, computed when needed)
RUNS = {"control": [], "distilled": [], "angular": ["--angular-channels", "16"], "width128": ["--width", "128"],
        "depth7": ["--depth", "7"], "positions": ["--denoise-positions"],
        "angular_positions": ["--angular-channels", "16", "--denoise-positions"], "epochs48": ["--epochs", "48"],
        "distilled_w3": ["--distill-weight", "3"], "denoise_w3": ["--denoise-weight", "3"],
        # student capacity (run with --every 8 --epochs 3): does the student's architecture limit what it takes
        # from the teacher? the distilled_w3 recipe with bond-angle moments or at width 128 (control, distilled_w3:
        # the same corpus and steps)
        "angular_distilled_w3": ["--angular-channels", "16", "--distill-weight", "3"],
        "width128_distilled_w3": ["--width", "128", "--distill-weight", "3"],
        # the distillation recipe at 4 times the probe's steps (run with --every 8; 12 epochs), and its equal-step
        # control: the distilled recipe's own compute curve, and a from-scratch candidate to ship
        "long_control": ["--epochs", "12"], "long_distilled_w3": ["--epochs", "12", "--distill-weight", "3"],
        "long_distilled_w3_inductive": ["--epochs", "12", "--distill-weight", "3", "--exclude-ids",
                                        INDUCTIVE_IDS],
        # the run the short runs point to (run with --every 8): 2.0 trained further, not from scratch
        **{name: [*CONTINUATION, *extra] for name, extra in (
            ("continued", []), ("continued_distilled", []),
            ("continued_distilled_inductive", ["--init-from", "cgcnn-ssl-mp2025-inductive@2.0", "--exclude-ids",
                                               INDUCTIVE_IDS]))}}


def subset_corpus(corpus: Path, every: int) -> Path:
    """Every ``every``-th line of the corpus, written once."""
    out = WORK / f"corpus_every{every}.jsonl.gz"
    if not out.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        from ssl_featurizer.readers import open_text

        tmp = out.with_suffix(".tmp")
        with open_text(corpus) as fh, gzip.open(tmp, "wt") as dst:
            dst.writelines(itertools.islice(fh, 0, None, every))
        tmp.replace(out)
    return out


def main() -> None:
    cli = script_parser(__doc__, corpus=True)
    cli.add_argument("--every", type=int, default=40, help="keep every N-th corpus structure (default: %(default)s)")
    cli.add_argument("--epochs", type=int, default=16, help="passes over the subset (default: %(default)s)")
    cli.add_argument("--batch-size", type=int, default=64, help="structures per step (default: %(default)s)")
    cli.add_argument("--dims", type=int, default=64, help="teacher components kept (default: %(default)s)")
    cli.add_argument("--runs", default="control,distilled", help=f"which of {', '.join(RUNS)} (default: %(default)s)")
    args = cli.parse_args()

    from ssl_featurizer.cli import main as ssl_featurizer
    from ssl_featurizer.training.teacher import build_teacher_targets

    # paths relative to the working folder (the repository root): the exported cards record them
    corpus = Path(os.path.relpath(subset_corpus(Path(args.data), args.every)))
    recipe = ["--data", str(corpus), "--cache-dir", str(WORK / f"graphs_every{args.every}"), "--epochs",
              str(args.epochs), "--batch-size", str(args.batch_size), "--element-table", "v2", "--width", "64",
              "--depth", "5", "--denoise-sigma", "0.1", "--threads", "1", "--seed", "0"]
    runs = [r for r in args.runs.split(",") if r]
    if unknown := sorted(set(runs) - set(RUNS)):
        raise SystemExit(f"unknown run(s) {unknown}; declared: {list(RUNS)}")
    for run in runs:
        out = WORK / f"run_{run}_every{args.every}"
        extra = list(RUNS[run])
        if "distilled" in run:  # the teacher's targets: computed once, only for the runs that use them
            targets = build_teacher_targets(corpus, WORK / f"targets_every{args.every}", teacher="sevennet-0",
                                            layers="12345", dims=args.dims, progress=True)
            extra += ["--distill-targets", os.path.relpath(targets)]
        resume = ["--resume"] if (out / "checkpoint.pt").exists() else []
        if ssl_featurizer(["pretrain", *recipe, "--out", str(out), *extra, *resume]) != 0:
            raise SystemExit(f"pretraining {run} failed")
        if ssl_featurizer(["export", "--run", str(out), "--cache-dir", str(WORK / f"graphs_every{args.every}"),
                           "--out", str(MODELS / f"{run}_every{args.every}"), "--name",
                           f"short-{run}-every{args.every}", "--version", "0.1",
                           "--description", f"development run ({run}) of studies/distill_study.py"]) != 0:
            raise SystemExit(f"exporting {run} failed")
        print(f"{run}: exported to {MODELS / f'{run}_every{args.every}'}", flush=True)


if __name__ == "__main__":
    main()
