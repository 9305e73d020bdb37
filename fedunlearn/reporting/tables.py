"""comparison.{md,tex,csv}: one row per method with the metrics and costs of results.json."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

COLUMNS = (
    ("test_accuracy", "test acc"),
    ("remaining_accuracy", "remaining acc"),
    ("forgotten_accuracy", "forgotten acc"),
    ("backdoor_asr", "backdoor ASR"),
    ("mia_auc", "MIA AUC"),
    ("l2_to_retrain", "L2 to retrain"),
    ("angle_to_retrain", "angle to retrain"),
    ("kl_to_retrain", "KL to retrain"),
    ("js_to_retrain", "JS to retrain"),
)
COSTS = (
    ("wall_s", "wall s"),
    ("client_epochs", "client-epochs"),
    ("rounds", "rounds"),
    ("speedup_epochs", "speed-up (epochs)"),
    ("speedup_wall", "speed-up (wall)"),
)
HEADER = ["method", *(label for _, label in COLUMNS), *(label for _, label in COSTS)]


def method_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat records: 'before unlearning' then each method, metrics and costs by key."""
    train = results["training"]
    rows = [
        {
            "method": "before unlearning",
            **results["before_unlearning"]["metrics"],
            "wall_s": train["wall_s"],
            "client_epochs": train["client_epochs"],
            "rounds": len(train["rounds"]),
        }
    ]
    for name, entry in results.get("unlearning", {}).items():
        speed = entry["speedup_vs_retrain"] or {}
        rows.append(
            {
                "method": name,
                **entry["metrics"],
                "wall_s": entry["wall_s"],
                "client_epochs": entry["client_epochs"],
                "rounds": entry["rounds"],
                "speedup_epochs": speed.get("client_epochs"),
                "speedup_wall": speed.get("wall"),
            }
        )
    return rows


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def table_cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    keys = [k for k, _ in COLUMNS] + [k for k, _ in COSTS]
    return [[str(r["method"]), *(fmt(r.get(k)) for k in keys)] for r in rows]


def markdown(cells: list[list[str]], header: list[str] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def latex(cells: list[list[str]], header: list[str] = HEADER) -> str:
    def esc(s: str) -> str:
        return s.replace("±", r"$\pm$").replace("_", r"\_").replace("%", r"\%")

    lines = [
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(esc(h) for h in header) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(esc(c) for c in row) + r" \\" for row in cells]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict[str, Any]], keys: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_comparison(run_dir: Path, results: dict[str, Any]) -> list[Path]:
    """Write comparison.md, comparison.tex and comparison.csv next to results.json."""
    rows = method_rows(results)
    cells = table_cells(rows)
    keys = ["method", *(k for k, _ in COLUMNS), *(k for k, _ in COSTS)]
    files = {"comparison.md": markdown(cells), "comparison.tex": latex(cells), "comparison.csv": csv_text(rows, keys)}
    for name, text in files.items():
        (run_dir / name).write_text(text)
    return [run_dir / n for n in files]
