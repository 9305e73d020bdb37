"""comparison.{md,tex,csv}: one row per model (before unlearning, then each method) with every catalog column."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fedunlearn.evaluation.catalog import COLUMNS, Column
from fedunlearn.history.writer import atomic_write
from fedunlearn.results import RunResult

Row = dict[str, Any]  # "method" and one value per catalog column key


def rows(result: RunResult) -> list[Row]:
    """'before unlearning' (training's costs) then each method, by catalog key."""
    train = result.training
    out: list[Row] = [
        {
            "method": "before unlearning",
            **(result.before_unlearning or {}),
            "wall_s": train.wall_s,
            "client_epochs": train.client_epochs,
            "compute": None if train.compute is None else train.compute.sge / 1e6,
            "rounds": len(train.rounds),
            "megabytes": train.bytes.total / 1e6,
        }
    ]
    for name, m in (result.unlearning or {}).items():
        speed = m.speedup_vs_retrain
        spent = m.client_epochs > 0, m.bytes.total > 0, m.compute is not None and m.compute.sge > 0
        out.append(
            {
                "method": name,
                "exact": m.exact,
                **m.metrics,
                "wall_s": m.wall_s,
                "client_epochs": m.client_epochs,
                "compute": None if m.compute is None else m.compute.sge / 1e6,
                "rounds": m.rounds,
                "megabytes": m.bytes.total / 1e6,
                "speedup_epochs": None if speed is None else (speed.client_epochs if spent[0] else float("inf")),
                "speedup_compute": None if speed is None else (speed.compute if spent[2] else float("inf")),
                "speedup_wall": None if speed is None else speed.wall,
                "speedup_bytes": None if speed is None else (speed.bytes if spent[1] else float("inf")),
            }
        )
    return out


def label(row: Row) -> str:
    """The row's name as tables print it: a reference that tolerated a crashed client says it is inexact."""
    return f"{row['method']} (inexact)" if row.get("exact") is False else str(row["method"])


def inexact_note(result: RunResult) -> str | None:
    """The line tables add under a run whose exact reference (retrain, rollback) missed a crashed client."""
    names = [name for name, m in (result.unlearning or {}).items() if m.exact is False]
    if not names:
        return None
    what = "every distance to retrain is to an inexact reference" if "retrain" in names else "it is not exact"
    return f"NOTE: {', '.join(names)} tolerated a ClientApp failure (fl.exact_reference=false), so {what}"


def cells(table: list[Row], columns: tuple[Column, ...] = COLUMNS) -> list[list[str]]:
    return [[label(r), *(c.format(r.get(c.key)) for c in columns)] for r in table]


def header(columns: tuple[Column, ...] = COLUMNS) -> list[str]:
    return ["method", *(c.label for c in columns)]


def markdown(body: list[list[str]], head: list[str]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def latex(body: list[list[str]], head: list[str]) -> str:
    def esc(s: str) -> str:
        return s.replace("±", r"$\pm$").replace("∞", r"$\infty$").replace("_", r"\_").replace("%", r"\%")

    lines = [r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule", " & ".join(esc(h) for h in head) + r" \\"]
    lines += [
        r"\midrule",
        *(" & ".join(esc(c) for c in row) + r" \\" for row in body),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def csv_text(table: list[Row], keys: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def write_comparison(run_dir: Path, result: RunResult) -> list[Path]:
    """Write comparison.md, comparison.tex and comparison.csv next to results.json."""
    table = rows(result)
    body, head = cells(table), header()
    note = inexact_note(result)
    files = {
        "comparison.md": markdown(body, head) + ("" if note is None else f"\n{note}\n"),
        "comparison.tex": latex(body, head) + ("" if note is None else f"% {note}\n"),
        "comparison.csv": csv_text(table, ["method", "exact", *(c.key for c in COLUMNS)]),
    }
    for name, text in files.items():
        atomic_write(run_dir / name, text.encode())
    return [run_dir / n for n in files]
