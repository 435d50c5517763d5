#!/usr/bin/env bash
# Reproduce docs/benchmarks.md (from the repo root; ../shared/data must exist). Results land in
# benchmarks/results/<task>/ (CSV, Markdown, figures); feature caches in benchmarks/cache/ (not committed).
set -euo pipefail
SSL="ssl:0,ssl:01,ssl:012,ssl:0123,ssl:01234,ssl:012345,ssl:012:mean-std"
HAND="magpie,sine_coulomb,symmetry_density"
BOTH="ssl:012+magpie,ssl:012:mean-std+magpie"
REG="${REGRESSORS:-krr,gbr}"
run() { ssl-featurizer bench --seeds 3 --cache-dir benchmarks/cache --n-jobs 2 --regressors "$REG" "$@"; }
for task in kong2023_formation_energy kong2023_hse_gap kong2023_log_kvrh kong2023_log_gvrh magndata_transition_temperature; do
  run --task "$task" --descriptors "$SSL,$HAND,$BOTH" --out "benchmarks/results/$task"
done
MATMINER_DATA=../shared/data/matminer run --task matbench_dielectric \
  --descriptors "ssl:01,ssl:012,ssl:012:mean-std,magpie,sine_coulomb,symmetry_density,ssl:012:mean-std+magpie" \
  --out benchmarks/results/matbench_dielectric
# the three MAGNDATA site-moment runs (Kong et al.'s sites, all ordered sites, 5k-site KRR subsample) and the
# magnetism analysis: docs/magnetism.md
python benchmarks/magnetism.py bench
python benchmarks/magnetism.py analysis
python benchmarks/magnetism.py docs
python benchmarks/collect.py
