"""Paired comparison of two families over outer splits: the corrected resampled t-test and the verdict rule.

Outer splits that share training rows give correlated scores, so the plain paired t-test is overconfident.
Nadeau & Bengio (2003, *Inference for the generalization error*, Machine Learning 52:239) inflate the variance of
the mean difference over J splits from ``s²/J`` to ``(1/J + n_test/n_train) s²``; the statistic is compared with a
Student t distribution of J − 1 degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ALPHA = 0.05


def corrected_ttest(diffs: Sequence[float], n_train: float, n_test: float) -> tuple[float, float]:
    """Corrected resampled t statistic and two-sided p-value of paired per-split differences.

    Args:
        diffs: per-split differences (A − B), J ≥ 2 of them.
        n_train: training rows per split (the mean if they vary).
        n_test: test rows per split (the mean if they vary).

    Returns:
        ``(t, p)``; ``(0.0, 1.0)`` when every difference is zero, ``(±inf, 0.0)`` when all are equal and non-zero.
    """
    from scipy.stats import t as student

    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        raise ValueError(f"the corrected t-test needs at least 2 splits, got {d.size}")
    mean, var = d.mean(), d.var(ddof=1)
    if var == 0:
        return (0.0, 1.0) if mean == 0 else (float(np.sign(mean) * np.inf), 0.0)
    t = mean / np.sqrt((1 / d.size + n_test / n_train) * var)
    return float(t), float(2 * student.sf(abs(t), d.size - 1))


def verdict(name_a: str, mean_a: float, name_b: str, mean_b: float, p: float, alpha: float = ALPHA) -> str:
    """``"<A> wins"`` when A's mean MAE is lower and p < alpha (and the same for B), otherwise ``"tie"``."""
    if p < alpha and mean_a != mean_b:
        return f"{name_a if mean_a < mean_b else name_b} wins"
    return "tie"
