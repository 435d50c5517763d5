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


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values of one family of tests (step-down; NaN entries are not tests).

    The i-th smallest of m p-values becomes ``max_{j ≤ i} min(1, (m − j + 1) p_(j))``; rejecting where the adjusted
    p is below alpha controls the family-wise error rate at alpha (Holm 1979, Scand. J. Statist. 6:65).

    Args:
        pvalues: raw p-values; NaN for a comparison that is not part of the family.

    Returns:
        The adjusted p-values in the input order (NaN where the input is NaN).
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


#: how a material set's verdict follows from its tasks' verdicts, stated before any result is read
SET_RULE = ("a material set counts as a win for A only if every one of its tasks is an A win (none a loss or a tie), "
            "as a loss only if every task is a B win; any other mix counts as a tie; a set with a task without verdict "
            "(an incomplete menu) has no verdict")


def set_verdict(task_verdicts: Sequence[str], name_a: str, name_b: str) -> str:
    """One verdict per material set from its tasks' verdicts, by :data:`SET_RULE`.

    Returns:
        ``"<A> wins"``, ``"<B> wins"``, ``"tie"`` or ``"no verdict (incomplete menu)"``.
    """
    if not task_verdicts:
        raise ValueError("a material set needs at least one task verdict")
    if any(v.startswith("no verdict") for v in task_verdicts):
        return "no verdict (incomplete menu)"
    for name in (name_a, name_b):
        if all(v == f"{name} wins" for v in task_verdicts):
            return f"{name} wins"
    return "tie"
