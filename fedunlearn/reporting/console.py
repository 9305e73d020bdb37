"""The human-readable summary printed at the end of a run (the catalog's console columns)."""

from __future__ import annotations

from fedunlearn.core.fedavg import RoundRecord
from fedunlearn.evaluation.catalog import COLUMNS, Column
from fedunlearn.reporting.tables import cells, inexact_note, rows
from fedunlearn.results import RunResult

CONSOLE: tuple[Column, ...] = tuple(c for c in COLUMNS if c.console)


def render_table(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
        for row in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison_table(result: RunResult) -> str:
    """The console's columns, less those no row has a value for (e.g. LiRA's without evaluation.references)."""
    table = rows(result)
    shown = tuple(c for c in CONSOLE if any(r.get(c.key) is not None for r in table))
    return render_table([["model", *(c.short for c in shown)], *cells(table, shown)])


def _all_rounds(result: RunResult) -> list[RoundRecord]:
    rounds = list(result.training.rounds)
    for m in (result.unlearning or {}).values():
        rounds += m.recovery_rounds
    return rounds


def summary(result: RunResult) -> str:
    train, hist = result.training, result.history
    last = train.rounds[-1]
    accuracy = "-" if last.test_accuracy is None else f"{last.test_accuracy:.4f}"
    lines = [
        f"training: {len(train.rounds)} rounds, {train.client_epochs:g} client-epochs"
        + ("" if train.compute is None else f" ({train.compute.sge / 1e6:.2f} M SGE)")
        + ", "
        f"{train.bytes.total / 1e6:.1f} MB exchanged, {train.wall_s:.1f}s; final test accuracy {accuracy}",
        f"history: {hist.rounds_stored} rounds stored, {hist.bytes / 1e6:.2f} MB ({hist.dtype}, "
        f"interval {hist.interval}" + ("" if hist.codec["name"] == "none" else f", codec {hist.codec['name']}") + ")",
    ]
    failures = [f for r in _all_rounds(result) for f in (r.failures or [])]
    if failures:
        lines.append(
            f"client failures tolerated (fl.max_client_failures): {len(failures)}, e.g. client {failures[0].cid}: "
            f"{failures[0].error}"
        )
    if train.diverged is not None:
        lines.append(f"WARNING: training diverged: {train.diverged.reason}")
    fmt = COLUMNS[0].format
    for r in result.requests or []:
        b, a = r.metrics_before, r.result.metrics
        lines.append(
            f"request {r.request} after round {r.after_round}: {r.method} forgets {r.result.clients} "
            f"(all departed: {r.forgotten_so_far}): test acc {fmt(b['test_accuracy'])} → {fmt(a['test_accuracy'])}, "
            f"ASR {fmt(b['backdoor_asr'])} → {fmt(a['backdoor_asr'])}, {r.result.client_epochs:g} client-epochs, "
            f"{r.result.wall_s:.1f}s"
        )
    if result.unlearning is not None:
        against = " at the end, against retraining without all of them" if result.requests else ""
        lines.append(f"unlearning clients {result.forgotten}{against}:")
        lines.append(comparison_table(result))
        note = inexact_note(result)
        if note is not None:
            lines.append(note)
    return "\n".join(lines)
