"""The cost–quality frontier: points against retrain, the Pareto set, and the plots of a run and of a sweep."""

import math
from pathlib import Path

from fedunlearn.reporting.plots import Point, pareto, plot_frontier


def test_pareto_keeps_the_methods_nothing_beats_on_every_axis() -> None:
    points = [
        Point("fast-bad", 100.0, 10.0, 0.0),
        Point("slow-good", 2.0, 0.0, 0.0),
        Point("dominated", 2.0, 5.0, 1.0),  # slow-good is as fast and better on both gaps
        Point("free", math.inf, 20.0, 50.0),
        Point("middle", 20.0, 0.5, 0.0),
    ]
    assert pareto(points) == {"fast-bad", "slow-good", "free", "middle"}
    assert pareto([Point("a", 5.0, 1.0, None), Point("b", 5.0, 1.0, None)]) == {"a", "b"}  # equal: neither dominates


def test_frontier_plot_draws_infinite_speedups_and_spreads(tmp_path: Path) -> None:
    points = [Point("kd", math.inf, 3.0, 0.0), Point("federaser", 4.4, 0.5, 0.0, 0.2, 0.3, 0.1)]
    path = plot_frontier(tmp_path / "f.png", points, "test")
    assert path.stat().st_size > 5000
