"""``fedunlearn-report DIR...``: one mean ± std table over every results.json found under the given folders
(a multirun sweep, or several runs), grouped by method."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.reporting.results import RESULTS_FILE, read_results
from fedunlearn.reporting.tables import COLUMNS, COSTS, csv_text, latex, markdown, method_rows


def find_results(dirs: list[Path]) -> list[Path]:
    found = sorted({p for d in dirs for p in ([d] if d.is_file() else d.rglob(RESULTS_FILE))})
    return [p for p in found if p.name == RESULTS_FILE]


def aggregate(paths: list[Path]) -> list[dict[str, Any]]:
    """Per method: mean ± std of each metric and cost over the runs that have it, and the run count."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        results = read_results(path)
        if "before_unlearning" not in results:
            continue
        for row in method_rows(results):
            grouped[row["method"]].append(row)
    out = []
    for method, rows in grouped.items():
        entry: dict[str, Any] = {"method": method, "runs": len(rows)}
        for key in [k for k, _ in COLUMNS] + [k for k, _ in COSTS]:
            values = [r[key] for r in rows if r.get(key) is not None]
            entry[key] = float(np.mean(values)) if values else None
            entry[f"{key}_std"] = float(np.std(values)) if values else None
        out.append(entry)
    return out


def _cell(entry: dict[str, Any], key: str) -> str:
    if entry[key] is None:
        return "-"
    return f"{entry[key]:.3f} ± {entry[f'{key}_std']:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a.startswith("-") for a in args):
        print(
            "usage: fedunlearn-report DIR [DIR ...]  (folders holding results.json files, e.g. a multirun)",
            file=sys.stderr,
        )
        return 2
    dirs = [Path(a) for a in args]
    missing = [str(d) for d in dirs if not d.exists()]
    if missing:
        print(f"fedunlearn-report: no such folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    paths = find_results(dirs)
    rows = aggregate(paths)
    if not rows:
        print(f"fedunlearn-report: no results.json with unlearning results under {', '.join(args)}", file=sys.stderr)
        return 1
    keys = [k for k, _ in COLUMNS] + [k for k, _ in COSTS]
    header = ["method", "runs", *(label for _, label in COLUMNS), *(label for _, label in COSTS)]
    cells = [[r["method"], str(r["runs"]), *(_cell(r, k) for k in keys)] for r in rows]
    target = dirs[0] if dirs[0].is_dir() else dirs[0].parent
    (target / "aggregate.md").write_text(markdown(cells, header))
    (target / "aggregate.tex").write_text(latex(cells, header))
    csv_keys = ["method", "runs", *(x for k in keys for x in (k, f"{k}_std"))]
    (target / "aggregate.csv").write_text(csv_text(rows, csv_keys))
    print(f"{len(paths)} runs")
    print(markdown(cells, header))
    print(f"written: {target / 'aggregate.md'}, .tex, .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
