"""``fedunlearn-report DIR...``: one mean ± std table over every results.json found under the given folders
(a multirun sweep, or several runs), grouped by method."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.evaluation.catalog import COLUMNS
from fedunlearn.reporting.plots import Point, frontier_points, plot_frontier
from fedunlearn.reporting.results import RESULTS_FILE, load
from fedunlearn.reporting.tables import Row, csv_text, latex, markdown, rows


def find_results(dirs: list[Path]) -> list[Path]:
    found = sorted({p for d in dirs for p in ([d] if d.is_file() else d.rglob(RESULTS_FILE))})
    return [p for p in found if p.name == RESULTS_FILE]


def aggregate(paths: list[Path]) -> list[Row]:
    """Per method: mean ± std of each catalog column over the runs that have it, and the run count."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for path in paths:
        run = load(path)
        if run.unlearning is None:
            continue
        for row in rows(run):
            grouped[row["method"]].append(row)
    out = []
    for method, group in grouped.items():
        entry: Row = {"method": method, "runs": len(group)}
        for c in COLUMNS:
            values = [r[c.key] for r in group if r.get(c.key) is not None and math.isfinite(r[c.key])]
            entry[c.key] = float(np.mean(values)) if values else None
            entry[f"{c.key}_std"] = float(np.std(values)) if values else None
        out.append(entry)
    return out


def frontier_over_runs(paths: list[Path]) -> list[Point]:
    """Each method's mean ± std speed-up and gaps over the runs (a speed-up is infinite only if it is in every run)."""
    grouped: dict[str, list[Point]] = defaultdict(list)
    for path in paths:
        for point in frontier_points(load(path)):
            grouped[point.method].append(point)
    out = []
    for method, points in grouped.items():
        speeds = [p.speedup for p in points if math.isfinite(p.speedup)]
        asr = [p.asr_gap for p in points if p.asr_gap is not None]
        out.append(
            Point(
                method,
                float(np.mean(speeds)) if speeds else math.inf,
                float(np.mean([p.accuracy_gap for p in points])),
                float(np.mean(asr)) if asr else None,
                float(np.std(speeds)) if speeds else 0.0,
                float(np.std([p.accuracy_gap for p in points])),
                float(np.std(asr)) if asr else 0.0,
            )
        )
    return out


def _cell(entry: dict[str, Any], key: str) -> str:
    if entry[key] is None:
        return "-"
    return f"{entry[key]:.3f} ± {entry[f'{key}_std']:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a.startswith("-") for a in args):
        print("usage: fedunlearn-report DIR [DIR ...]  (folders holding results.json files, e.g. a multirun)",
              file=sys.stderr)  # fmt: skip
        return 2
    dirs = [Path(a) for a in args]
    missing = [str(d) for d in dirs if not d.exists()]
    if missing:
        print(f"fedunlearn-report: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = find_results(dirs)
    table = aggregate(paths)
    if not table:
        print(f"fedunlearn-report: no results.json with unlearning results under {', '.join(args)}", file=sys.stderr)
        return 1
    head = ["method", "runs", *(c.label for c in COLUMNS)]
    body = [[r["method"], str(r["runs"]), *(_cell(r, c.key) for c in COLUMNS)] for r in table]
    target = dirs[0] if dirs[0].is_dir() else dirs[0].parent
    (target / "aggregate.md").write_text(markdown(body, head))
    (target / "aggregate.tex").write_text(latex(body, head))
    keys = ["method", "runs", *(x for c in COLUMNS for x in (c.key, f"{c.key}_std"))]
    (target / "aggregate.csv").write_text(csv_text(table, keys))
    points = frontier_over_runs(paths)
    written = f"{target / 'aggregate.md'}, .tex, .csv"
    if len(points) >= 2:
        plot_frontier(target / "frontier.png", points, f"cost–quality frontier over {len(paths)} runs (mean ± std)")
        written += ", frontier.png"
    print(f"{len(paths)} runs")
    print(markdown(body, head))
    print(f"written: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
