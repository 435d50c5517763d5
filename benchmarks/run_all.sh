#!/usr/bin/env bash
# Reproduce docs/benchmarks.md (from the repo root; ../shared/data must exist). Results land in
# benchmarks/results/<task>/ (CSV, Markdown, figures); feature caches in benchmarks/cache/ (not committed).
set -euo pipefail
SSL="ssl:0,ssl:01,ssl:012,ssl:0123,ssl:01234,ssl:012345,ssl:012:mean-std"
HAND="magpie,sine_coulomb,symmetry_density"
BOTH="ssl:012+magpie,ssl:012:mean-std+magpie"
for task in kong2023_formation_energy kong2023_hse_gap kong2023_log_kvrh kong2023_log_gvrh magndata_transition_temperature; do
  ssl-featurizer bench --task "$task" --descriptors "$SSL,$HAND,$BOTH" --regressors "${REGRESSORS:-krr,gbr}" \
      --seeds 3 --out "benchmarks/results/$task" --cache-dir benchmarks/cache --n-jobs 2
done
python benchmarks/collect.py
