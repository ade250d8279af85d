"""Paired comparisons over seeds: mean difference, Student-t confidence interval and the two-sided sign test.

Used by the benchmark tables: every "A beats B" claim is a paired difference over seeds that share the initial
noise, the reference set and the projection directions, so seed-to-seed variation cancels.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over paired seeds (negative: a is better for a lower-is-better metric).

    Attributes:
        mean, ci_low, ci_high: mean difference and its two-sided 95 % Student-t interval (NaN with < 2 seeds).
        n: seeds; n_better: seeds where a < b; n_diverged: seeds where a or b is not finite (left out).
        sign_p: two-sided exact sign-test p-value of "a < b as often as a > b" (ties left out).
    """

    mean: float
    ci_low: float
    ci_high: float
    n: int
    n_better: int
    n_diverged: int
    sign_p: float

    @property
    def significant(self) -> bool:
        """The 95 % interval excludes 0."""
        return self.ci_high < 0 or self.ci_low > 0

    def describe(self, digits: int = 3) -> str:
        div = f", {self.n_diverged} diverged" if self.n_diverged else ""
        return (f"{self.mean:+.{digits}g} [95% CI {self.ci_low:+.{digits}g}, {self.ci_high:+.{digits}g}], "
                f"better in {self.n_better}/{self.n}, sign p={self.sign_p:.2g}{div}")


def _sign_test(wins: int, losses: int) -> float:
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def paired_comparison(a, b) -> PairedComparison:
    """Paired statistics of ``a - b`` (sequences of per-seed values of the same length)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of equal length, got {a.shape} and {b.shape}")
    finite = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[finite]
    n = diff.size
    if n == 0:
        return PairedComparison(math.nan, math.nan, math.nan, 0, 0, int(a.size), 1.0)
    mean = float(diff.mean())
    if n > 1:
        from scipy.stats import t as student_t

        half = float(student_t.ppf(0.975, n - 1) * diff.std(ddof=1) / math.sqrt(n))
    else:
        half = math.nan
    wins, losses = int((diff < 0).sum()), int((diff > 0).sum())
    return PairedComparison(mean, mean - half, mean + half, n, wins, int(a.size - n), _sign_test(wins, losses))
