"""The human-readable summary printed at the end of a run."""

from __future__ import annotations

from typing import Any

COLUMNS = (
    ("test acc", "test_accuracy"),
    ("remain acc", "remaining_accuracy"),
    ("forgot acc", "forgotten_accuracy"),
    ("ASR", "backdoor_asr"),
    ("MIA AUC", "mia_auc"),
    ("L2→retrain", "l2_to_retrain"),
    ("JS→retrain", "js_to_retrain"),
)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def comparison_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per model (before unlearning, then each method): metrics and costs."""
    header = ["model", *(c for c, _ in COLUMNS), "wall s", "client ep", "rounds", "speedup ep", "speedup wall"]
    rows = [header]
    before = results["before_unlearning"]["metrics"]
    train = results["training"]
    rows.append(
        [
            "before unlearning",
            *(_fmt(before[k]) for _, k in COLUMNS),
            _fmt(train["wall_s"], 1),
            str(train["client_epochs"]),
            str(len(train["rounds"])),
            "",
            "",
        ]
    )
    for name, entry in results["unlearning"].items():
        speed = entry["speedup_vs_retrain"] or {}
        rows.append(
            [
                name,
                *(_fmt(entry["metrics"][k]) for _, k in COLUMNS),
                _fmt(entry["wall_s"], 1),
                str(entry["client_epochs"]),
                str(entry["rounds"]),
                _fmt(speed.get("client_epochs"), 2),
                _fmt(speed.get("wall"), 2),
            ]
        )
    return rows


def render_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: dict[str, Any]) -> str:
    train, hist = results["training"], results["history"]
    last = train["rounds"][-1]
    lines = [
        f"training: {len(train['rounds'])} rounds, {train['client_epochs']} client-epochs, {train['wall_s']:.1f}s; "
        f"final test accuracy {last['test_accuracy']:.4f}",
        f"history: {hist['rounds_stored']} rounds stored, {hist['bytes'] / 1e6:.2f} MB ({hist['dtype']}, "
        f"interval {hist['interval']})",
    ]
    if "unlearning" in results:
        clients = next(iter(results["unlearning"].values()))["clients"] if results["unlearning"] else []
        for r in results.get("requests", []):
            b, a = r["metrics_before"], r["metrics"]
            lines.append(
                f"request {r['request']} after round {r['after_round']}: {r['method']} forgets {r['clients']} "
                f"(all departed: {r['forgotten_so_far']}): test acc {_fmt(b['test_accuracy'])} → "
                f"{_fmt(a['test_accuracy'])}, ASR {_fmt(b['backdoor_asr'])} → {_fmt(a['backdoor_asr'])}, "
                f"{r['client_epochs']} client-epochs, {r['wall_s']:.1f}s"
            )
        against = " at the end, against retraining without all of them" if "requests" in results else ""
        lines.append(f"unlearning clients {clients}{against}:")
        lines.append(render_table(comparison_rows(results)))
    return "\n".join(lines)
