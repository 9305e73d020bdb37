"""The report stage: results.json, the comparison tables and plots, and the console summary."""

from __future__ import annotations

from pathlib import Path

from fedunlearn.reporting.console import summary
from fedunlearn.reporting.plots import frontier_points, plot_frontier, plot_methods, plot_rounds
from fedunlearn.reporting.results import RunResult, write_results
from fedunlearn.reporting.tables import write_comparison


def report(run_dir: Path, run: RunResult) -> None:
    path = write_results(run_dir, run)
    files = "tables: comparison.md/.tex/.csv, plots: methods.png, rounds.png"
    if run.unlearning is not None:
        write_comparison(run_dir, run)
        plot_methods(run_dir, run)
        plot_rounds(run_dir, run)
        points = frontier_points(run)
        if len(points) >= 2:
            plot_frontier(run_dir / "frontier.png", points, f"cost–quality frontier: forgetting {run.forgotten}")
            files += ", frontier.png"
    print(summary(run))
    print(f"results: {path}" + (f" ({files})" if run.unlearning is not None else ""))
