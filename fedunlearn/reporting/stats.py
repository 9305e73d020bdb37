"""Statistics over seeds: mean, sample standard deviation and the 95% t-interval, and decisions made on the
interval's worse end (a "pass" that holds for the seeds' spread, not one lucky seed)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as scipy_stats


@dataclass(frozen=True)
class Interval:
    """``mean`` ± ``ci95`` over ``n`` values: Student's t-interval from the sample standard deviation (ddof = 1).
    With one value there is no interval (``std`` and ``ci95`` are None)."""

    mean: float
    std: float | None
    ci95: float | None
    n: int

    @property
    def low(self) -> float:
        return self.mean - (self.ci95 if self.ci95 is not None else math.inf)

    @property
    def high(self) -> float:
        return self.mean + (self.ci95 if self.ci95 is not None else math.inf)

    def text(self, digits: int = 3) -> str:
        """``0.912 ± 0.004 (n=3)``; ``0.912 (n=1)`` without an interval."""
        if self.ci95 is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ± {self.ci95:.{digits}f} (n={self.n})"


def t_quantile(n: int) -> float:
    """The two-sided 95% quantile of Student's t with n − 1 degrees of freedom."""
    return float(scipy_stats.t.ppf(0.975, n - 1))


def interval(values: Sequence[float]) -> Interval | None:
    """The 95% t-interval of ``values`` (finite ones only); None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not xs:
        return None
    if len(xs) == 1:
        return Interval(xs[0], None, None, 1)
    std = statistics.stdev(xs)
    return Interval(statistics.fmean(xs), std, t_quantile(len(xs)) * std / math.sqrt(len(xs)), len(xs))


def at_most(values: Sequence[float], tolerance: float) -> bool:
    """Whether the interval's upper end is within ``tolerance`` (a gap: smaller is better); False with fewer than
    two values (no interval, no decision)."""
    ci = interval(values)
    return ci is not None and ci.ci95 is not None and ci.high <= tolerance


def at_least(values: Sequence[float], target: float) -> bool:
    """Whether the interval's lower end reaches ``target`` (a speed-up: larger is better); infinite values (a method
    that spent nothing) reach any target; False with fewer than two values."""
    if len(values) >= 2 and all(math.isinf(v) and v > 0 for v in values):
        return True
    finite = [min(v, 1e12) for v in values]
    ci = interval(finite)
    return ci is not None and ci.ci95 is not None and ci.low >= target
