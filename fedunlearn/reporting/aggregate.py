"""``fedunlearn-report DIR...``: every results.json found under the given folders (a multirun sweep, or several runs),
as one table per configuration: per method, the mean ± 95% t-interval (sample statistics, n runs) of each catalog
column and of its gaps to retrain, paired run by run.

Runs are averaged only over what varies by chance — their seeds. Runs whose configurations differ in anything else
(the number of clients, a method's parameter, the data) are reported as separate groups, each headed by the keys that
set it apart, never mixed into one mean.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedunlearn.evaluation.catalog import COLUMNS
from fedunlearn.reporting.plots import Point, frontier_points, plot_frontier
from fedunlearn.reporting.stats import Interval, interval
from fedunlearn.reporting.tables import Row, csv_text, latex, markdown, rows
from fedunlearn.results import RESULTS_FILE, RunResult, load

REPLICATE_KEYS = ("seed",)  # what a group averages over
NOT_SETTINGS = ("resume", "progress", "ray.", "tracking.", "evaluation.curves", "evaluation.device", "history.dir")
GAPS = {  # gap to retrain in points, positive = worse than retrain: key → (metric, sign)
    "accuracy_gap": ("test_accuracy", -1.0),
    "asr_gap": ("backdoor_asr", 1.0),
}


def find_results(dirs: list[Path]) -> list[Path]:
    found = sorted({p for d in dirs for p in ([d] if d.is_file() else d.rglob(RESULTS_FILE))})
    return [p for p in found if p.name == RESULTS_FILE]


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: repr(node)}


def setting(result: RunResult) -> dict[str, Any]:
    """The run's flattened config without what may differ between replicates of one setting."""
    return {k: v for k, v in _flat(result.config).items() if k not in REPLICATE_KEYS and not k.startswith(NOT_SETTINGS)}


@dataclass
class Group:
    """Runs of one setting: ``label`` names the keys that set it apart from the other groups."""

    label: str
    runs: list[RunResult]
    paths: list[Path]


def group_runs(paths: list[Path]) -> list[Group]:
    """The runs with unlearning results, grouped by setting (every config key but the seed)."""
    loaded = [(p, load(p)) for p in paths]
    loaded = [(p, r) for p, r in loaded if r.unlearning is not None]
    by: dict[str, tuple[dict[str, Any], list[tuple[Path, RunResult]]]] = {}
    for path, result in loaded:
        key = repr(sorted(setting(result).items()))
        by.setdefault(key, (setting(result), []))[1].append((path, result))
    settings = [s for s, _ in by.values()]
    differing = sorted({k for s in settings for k in s if any(t.get(k) != s.get(k) for t in settings)})
    groups = []
    for s, members in by.values():
        label = ", ".join(f"{k}={s.get(k, '-')}" for k in differing) or "all runs"
        groups.append(Group(label, [r for _, r in members], [p for p, _ in members]))
    return groups


def _gap(result: RunResult, method: str, key: str) -> float | None:
    """``method``'s gap to retrain in ``run`` (points; positive = worse), None without retrain or the metric."""
    metric, sign = GAPS[key]
    u = result.unlearning or {}
    if "retrain" not in u or method not in u:
        return None
    value, ref = u[method].metrics.get(metric), u["retrain"].metrics.get(metric)
    return None if value is None or ref is None else sign * 100 * (value - ref)


def aggregate(runs: list[RunResult]) -> list[Row]:
    """Per method: each catalog column's and each gap's Interval over the runs that have it."""
    grouped: dict[str, list[Row]] = defaultdict(list)
    for result in runs:
        for row in rows(result):
            name = row["method"]
            row.update({key: _gap(result, name, key) for key in GAPS} if name != "before unlearning" else {})
            grouped[name].append(row)
    out = []
    for method, group in grouped.items():
        entry: Row = {"method": method, "runs": len(group)}
        for key in [*(c.key for c in COLUMNS), *GAPS]:
            entry[key] = interval([r[key] for r in group if r.get(key) is not None])
        out.append(entry)
    return out


def frontier_over_runs(runs: list[RunResult]) -> list[Point]:
    """Each method's mean speed-up and gaps over the runs, with their 95% half-intervals as spreads (a speed-up is
    infinite only if it is in every result)."""
    grouped: dict[str, list[Point]] = defaultdict(list)
    for result in runs:
        for point in frontier_points(result):
            grouped[point.method].append(point)

    def mean_ci(values: list[float]) -> tuple[float, float]:
        ci = interval(values)
        return (math.nan, 0.0) if ci is None else (ci.mean, ci.ci95 or 0.0)

    out = []
    for method, points in grouped.items():
        speeds = [p.speedup for p in points if math.isfinite(p.speedup)]
        speed, speed_ci = mean_ci(speeds) if speeds else (math.inf, 0.0)
        acc, acc_ci = mean_ci([p.accuracy_gap for p in points])
        asr_values = [p.asr_gap for p in points if p.asr_gap is not None]
        asr, asr_ci = mean_ci(asr_values) if asr_values else (None, 0.0)
        out.append(Point(method, speed, acc, asr, speed_ci, acc_ci, asr_ci))
    return out


HEAD = ["method", "runs", *(c.label for c in COLUMNS), "accuracy gap to retrain (pts)", "ASR gap to retrain (pts)"]
KEYS = [*(c.key for c in COLUMNS), *GAPS]


def _cell(value: Interval | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value.mean):
        return "∞"
    return value.text()


def _csv_rows(table: list[Row], label: str) -> list[Row]:
    out = []
    for r in table:
        row: Row = {"setting": label, "method": r["method"], "runs": r["runs"]}
        for key in KEYS:
            v: Interval | None = r[key]
            row.update({f"{key}": None if v is None else v.mean, f"{key}_std": None if v is None else v.std,
                        f"{key}_ci95": None if v is None else v.ci95, f"{key}_n": 0 if v is None else v.n})  # fmt: skip
        out.append(row)
    return out


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
    groups = group_runs(paths)
    if not groups:
        print(f"fedunlearn-report: no results.json with unlearning results under {', '.join(args)}", file=sys.stderr)
        return 1
    target = dirs[0] if dirs[0].is_dir() else dirs[0].parent
    md, tex, csv_rows, written = [], [], [], [f"{target / 'aggregate.md'}, .tex, .csv"]
    for i, group in enumerate(groups, start=1):
        table = aggregate(group.runs)
        body = [[r["method"], str(r["runs"]), *(_cell(r[k]) for k in KEYS)] for r in table]
        title = f"{group.label}: {len(group.runs)} run(s); mean ± 95% t-interval (sample std), n runs"
        md.append(f"### {title}\n\n{markdown(body, HEAD)}")
        tex.append(f"% {title}\n{latex(body, HEAD)}")
        csv_rows += _csv_rows(table, group.label)
        points = frontier_over_runs(group.runs)
        if len(points) >= 2:
            name = "frontier.png" if len(groups) == 1 else f"frontier-{i}.png"
            plot_frontier(target / name, points, f"cost–quality frontier, {group.label} ({len(group.runs)} runs)")
            written.append(name)
    if len(groups) > 1:
        print(f"{len(paths)} runs in {len(groups)} settings (runs are averaged over seeds only):")
    (target / "aggregate.md").write_text("\n".join(md))
    (target / "aggregate.tex").write_text("\n".join(tex))
    keys = ["setting", "method", "runs", *(f"{k}{s}" for k in KEYS for s in ("", "_std", "_ci95", "_n"))]
    (target / "aggregate.csv").write_text(csv_text(csv_rows, keys))
    print(f"{len(paths)} runs")
    print("\n".join(md))
    print(f"written: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
