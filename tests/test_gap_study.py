"""The gap study (studies/gap_study.py): the compute fit, a power law through the recipe's compute curve, read
back; the declared development choice of the distilled continuation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from gap_study import (
    COMPUTE_CURVE,
    DISTILLED_CANDIDATES,
    DISTILLED_MODEL,
    PEER,
    TARGETS,
    compute_fit,
    development_choice,
    fit_text,
)


def _frames(maes: dict[str, float], seen: dict[str, int], peer_mae: float = 0.1):
    summary = pd.DataFrame([{"target": t, "family": f, "mae": m} for t in TARGETS
                            for f, m in {**maes, PEER: peer_mae}.items()])
    compute = pd.DataFrame([{"family": f, "structures_seen": n, "cpu_s_per_structure": 0.002 if f == COMPUTE_CURVE[0]
                             else 0.005, "cpu_hours": np.nan} for f, n in seen.items()])
    return summary, compute


def test_an_exact_power_law_is_read_back():
    control, longer, ours = COMPUTE_CURVE
    seen = {control: 60_000, longer: 180_000, ours: 1_200_000}
    maes = {f: 0.8 * (n * 0.002 / 3600) ** -0.1 for f, n in seen.items()}  # MAE = a C^-0.1, C in CPU hours
    fit = compute_fit(*_frames(maes, seen))
    assert list(fit.target) == list(TARGETS) and (fit.points == ",".join(COMPUTE_CURVE)).all()
    np.testing.assert_allclose(fit.exponent, -0.1, rtol=1e-9)
    goal = maes[ours] - 0.5 * (maes[ours] - 0.1)
    hours = (goal / 0.8) ** (1 / -0.1)  # every point's compute uses the control's cost per structure
    np.testing.assert_allclose(fit.hours_needed, hours, rtol=1e-9)
    np.testing.assert_allclose(fit.times_ours, hours / (seen[ours] * 0.002 / 3600), rtol=1e-9)
    assert "MAE ∝ C^-0.100" in fit_text(fit)


def test_no_extrapolation_without_a_fall_and_no_fit_from_one_point():
    control, longer, ours = COMPUTE_CURVE
    flat = compute_fit(*_frames({control: 0.5, longer: 0.5, ours: 0.55}, {control: 1, longer: 3, ours: 20}))
    assert np.isnan(flat.hours_needed).all() and "no extrapolation" in fit_text(flat)
    assert compute_fit(*_frames({control: 0.5, ours: 0.4}, {control: 1})).empty  # one point timed
    assert compute_fit(*_frames({control: 0.5}, {control: 1, ours: 20})).empty  # 2.0 not scored: no goal to reach


def test_a_distilled_candidate_ships_only_below_ours_on_every_target():
    first, second = DISTILLED_CANDIDATES

    def summary(maes: dict[str, dict[str, float]]) -> pd.DataFrame:
        return pd.DataFrame([{"target": t, "family": f, "mae": m} for t in TARGETS
                             for f, m in {"ours": 0.5, **{c: v[t] for c, v in maes.items()}}.items()])

    both = development_choice(summary({first: {t: 0.49 for t in TARGETS}, second: {t: 0.45 for t in TARGETS}}))
    assert f"`{second}` ships beside the default as `{DISTILLED_MODEL}`" in both  # the lower relative MAE
    worse_on_last = development_choice(summary({first: {**{t: 0.4 for t in TARGETS}, TARGETS[-1]: 0.5001}}))
    assert "no distilled model ships" in worse_on_last and f"is not below ours on `{TARGETS[-1]}`" in worse_on_last
    assert f"`{TARGETS[0]}`" not in worse_on_last.split("is not below ours on")[1]
    one_passes = development_choice(summary({first: {t: 0.6 for t in TARGETS}, second: {t: 0.49 for t in TARGETS}}))
    assert f"`{second}` ships" in one_passes and f"`{first}` is not below ours" in one_passes
    assert development_choice(summary({})) == ""  # no candidate scored yet: no choice
