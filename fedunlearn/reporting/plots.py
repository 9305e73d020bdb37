"""PNG plots of a run: accuracy and backdoor ASR per method; test accuracy along training and along each
method's own steps (one panel per x unit: federated rounds, replay steps, server-side epochs)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fedunlearn.core.fedavg import RoundRecord
from fedunlearn.evaluation.catalog import column
from fedunlearn.history.writer import atomic_write
from fedunlearn.results import RunResult

UNITS = {"round": "federated round", "step": "replay step", "epoch": "epoch computed on the server"}
DPI = 300  # for print; a PDF (vector) is written beside every PNG


def save_figure(fig: Any, path: Path) -> Path:
    """``path`` (a 300 dpi PNG) and the same figure as a PDF beside it, each written atomically; the figure closed."""
    for target, fmt in ((path, "png"), (path.with_suffix(".pdf"), "pdf")):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=DPI)
        atomic_write(target, buffer.getvalue())
    plt.close(fig)
    return path


def plot_methods(run_dir: Path, result: RunResult) -> Path:
    names = ["before", *(result.unlearning or {})]
    metrics = [result.before_unlearning or {}, *(m.metrics for m in (result.unlearning or {}).values())]
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 3.5))
    x = range(len(names))
    keys = ["test_accuracy"] + (["backdoor_asr"] if any(m.get("backdoor_asr") is not None for m in metrics) else [])
    width = 0.8 / len(keys)
    for k, key in enumerate(keys):
        at = [i + (k - (len(keys) - 1) / 2) * width for i in x]
        values = [m.get(key) for m in metrics]
        bars = ax.bar(at, [v or 0 for v in values], width=width, label=column(key).label)
        # every bar says its value, so that 0 reads as 0 and not as a missing bar
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.2f}" for v in values], fontsize=6, padding=1)
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("fraction of samples")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("Accuracy and backdoor ASR per method")
    fig.tight_layout()
    return save_figure(fig, run_dir / "methods.png")


def plot_rounds(run_dir: Path, result: RunResult) -> Path:
    """Test accuracy per record, one panel per unit; training in the rounds panel."""
    series: dict[str, dict[str, list[RoundRecord]]] = {u: {} for u in UNITS}
    series["round"]["training"] = list(result.training.rounds)
    for name, m in (result.unlearning or {}).items():
        for r in m.recovery_rounds:
            if r.test_accuracy is not None:  # (methods are evaluated along the way only with evaluation.curves)
                series[r.unit].setdefault(r.phase or name, []).append(r)
    panels = [u for u in UNITS if any(any(r.test_accuracy is not None for r in s) for s in series[u].values())]
    panels = panels or ["round"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.5), squeeze=False)
    for ax, unit in zip(axes[0], panels, strict=True):
        for label, records in series[unit].items():
            style = {"color": "black"} if label == "training" else {"alpha": 0.8}
            ax.plot([r.round for r in records], [r.test_accuracy for r in records], label=label, **style)
        ax.set_xlabel(UNITS[unit])
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, run_dir / "rounds.png")


@dataclass(frozen=True)
class Point:
    """A method on the cost–quality plane: speed-up over retrain in client-epochs (inf: trains no client), and its
    accuracy and backdoor-ASR gaps to retrain in points (positive: worse than retrain), each with a spread."""

    method: str
    speedup: float
    accuracy_gap: float
    asr_gap: float | None
    speedup_std: float = 0.0
    accuracy_gap_std: float = 0.0
    asr_gap_std: float = 0.0


def frontier_points(result: RunResult) -> list[Point]:
    """Every method but retrain, against retrain, when retrain ran."""
    methods = result.unlearning or {}
    if "retrain" not in methods:
        return []
    ref = methods["retrain"].metrics
    points = []
    for name, m in methods.items():
        if name == "retrain" or m.speedup_vs_retrain is None:
            continue
        speed = m.speedup_vs_retrain.client_epochs
        asr = m.metrics.get("backdoor_asr")
        points.append(
            Point(
                name,
                math.inf if speed is None else speed,
                100 * ((ref["test_accuracy"] or 0.0) - (m.metrics["test_accuracy"] or 0.0)),
                None if asr is None or ref["backdoor_asr"] is None else 100 * (asr - ref["backdoor_asr"]),
            )
        )
    return points


def pareto(points: list[Point]) -> set[str]:
    """Methods no other method beats on every axis (higher speed-up, lower accuracy gap, lower ASR gap)."""

    def axes(p: Point) -> tuple[float, float, float]:
        return (-p.speedup, p.accuracy_gap, p.asr_gap or 0.0)

    best = set()
    for p in points:
        dominated = any(
            all(a <= b for a, b in zip(axes(q), axes(p), strict=True)) and axes(q) != axes(p) for q in points
        )
        if not dominated:
            best.add(p.method)
    return best


def within_quality(p: Point, target: tuple[float, float, float]) -> bool:
    """Whether ``p``'s gaps to retrain are within the target's accuracy and ASR tolerances (points)."""
    return p.accuracy_gap <= target[1] and (p.asr_gap is None or p.asr_gap <= target[2])


def starred(points: list[Point], target: tuple[float, float, float]) -> set[str]:
    """The methods a frontier plot stars: Pareto-optimal among those within the target's quality tolerance (a fast
    method that lost the model's accuracy is not on the frontier of useful methods)."""
    return pareto([p for p in points if within_quality(p, target)])


def plot_frontier(path: Path, points: list[Point], title: str, target: tuple[float, float, float] = (10, 1, 2)) -> Path:
    """x: speed-up over retrain in client-epochs (log; ∞ drawn at the right edge), y: accuracy gap (top) and ASR gap
    (bottom) to retrain; among the methods within the quality tolerance, the Pareto-optimal ones are starred; the
    others are drawn plainly. Gaps far off the tolerance sit at the panel's edge, their value written beside them."""
    finite = [p.speedup for p in points if math.isfinite(p.speedup)] or [1.0]
    edge = max(max(finite) * 3, target[0] * 3)
    best = starred(points, target)
    panels = [("accuracy_gap", "test accuracy gap to retrain (pts)", target[1])]
    if any(p.asr_gap is not None for p in points):
        panels.append(("asr_gap", "backdoor ASR gap to retrain (pts)", target[2]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (key, label, limit) in zip(axes[:, 0], panels, strict=True):
        ax.axhspan(-1e9, limit, xmin=0, xmax=1, color="tab:green", alpha=0.06)
        ax.axvline(target[0], color="tab:green", ls="--", lw=0.8)
        ax.axhline(limit, color="tab:green", ls="--", lw=0.8)
        low, high = -3 * limit, 6 * limit  # the tolerance stays readable; what lies beyond is drawn at the edge
        for p in points:
            y = getattr(p, key)
            if y is None:
                continue
            x = p.speedup if math.isfinite(p.speedup) else edge
            shown = min(max(y, low), high)
            spread = getattr(p, f"{key}_std")
            style = {"fmt": "*", "ms": 11, "color": "tab:red"} if p.method in best else {"fmt": "o", "ms": 6}
            ax.errorbar(x, shown, yerr=(spread or None) if shown == y else None, xerr=p.speedup_std or None, **style)
            name = p.method + ("" if math.isfinite(p.speedup) else " (∞)") + ("" if shown == y else f" ({y:+.0f})")
            ax.annotate(name, (x, shown), fontsize=7, xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_ylabel(label, fontsize=8)
        ax.set_ylim(low - 0.5 * limit, high + 0.5 * limit)
    axes[-1, 0].set_xlabel(
        "speed-up over retrain in client-epochs (log); ★ Pareto-optimal among the methods within the tolerance "
        "(dashed); shaded: the target",
        fontsize=8,
    )
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
