"""The report stage: results.json, the comparison tables and plots, and the console summary."""

from __future__ import annotations

from pathlib import Path

from fedunlearn.reporting.console import summary
from fedunlearn.reporting.plots import frontier_points, plot_frontier, plot_methods, plot_rounds
from fedunlearn.reporting.tables import write_comparison
from fedunlearn.results import RunResult, write_results


def report(run_dir: Path, result: RunResult) -> None:
    path = write_results(run_dir, result)
    files = "tables: comparison.md/.tex/.csv, plots: methods.png, rounds.png"
    if result.unlearning is not None:
        write_comparison(run_dir, result)
        plot_methods(run_dir, result)
        plot_rounds(run_dir, result)
        points = frontier_points(result)
        if len(points) >= 2:
            plot_frontier(run_dir / "frontier.png", points, f"cost–quality frontier: forgetting {result.forgotten}")
            files += ", frontier.png"
    print(summary(result))
    print(f"results: {path}" + (f" ({files})" if result.unlearning is not None else ""))
