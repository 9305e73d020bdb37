"""PNG plots of a run: accuracy and backdoor ASR per method; test accuracy along training and along each
method's own steps (one panel per x unit: federated rounds, replay steps, server-side epochs)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fedunlearn.evaluation.catalog import column
from fedunlearn.fl.fedavg import RoundRecord
from fedunlearn.reporting.results import RunResult

UNITS = {"round": "federated round", "step": "replay step", "epoch": "epoch computed on the server"}


def plot_methods(run_dir: Path, run: RunResult) -> Path:
    names = ["before", *(run.unlearning or {})]
    metrics = [run.before_unlearning or {}, *(m.metrics for m in (run.unlearning or {}).values())]
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 3.5))
    x = range(len(names))
    for offset, key in ((-0.2, "test_accuracy"), (0.2, "backdoor_asr")):
        ax.bar([i + offset for i in x], [m.get(key) or 0 for m in metrics], width=0.4, label=column(key).label)
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("Accuracy and backdoor ASR per method")
    fig.tight_layout()
    path = run_dir / "methods.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rounds(run_dir: Path, run: RunResult) -> Path:
    """Test accuracy per record, one panel per unit; training in the rounds panel."""
    series: dict[str, dict[str, list[RoundRecord]]] = {u: {} for u in UNITS}
    series["round"]["training"] = list(run.training.rounds)
    for name, m in (run.unlearning or {}).items():
        for r in m.recovery_rounds:
            series[r.unit].setdefault(r.phase or name, []).append(r)
    panels = [u for u in UNITS if series[u]]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.5), squeeze=False)
    for ax, unit in zip(axes[0], panels, strict=True):
        for label, records in series[unit].items():
            style = {"color": "black"} if label == "training" else {"alpha": 0.8}
            ax.plot([r.round for r in records], [r.test_accuracy for r in records], label=label, **style)
        ax.set_xlabel(UNITS[unit])
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = run_dir / "rounds.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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


def frontier_points(run: RunResult) -> list[Point]:
    """Every method but retrain, against retrain, when retrain ran."""
    methods = run.unlearning or {}
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


def plot_frontier(path: Path, points: list[Point], title: str, target: tuple[float, float, float] = (10, 1, 2)) -> Path:
    """x: speed-up over retrain in client-epochs (log; ∞ drawn at the right edge), y: accuracy gap (top) and ASR gap
    (bottom) to retrain; Pareto-optimal methods marked, the target region shaded."""
    finite = [p.speedup for p in points if math.isfinite(p.speedup)] or [1.0]
    edge = max(max(finite) * 3, target[0] * 3)
    best = pareto(points)
    panels = [("accuracy_gap", "test accuracy gap to retrain (pts)", target[1])]
    if any(p.asr_gap is not None for p in points):
        panels.append(("asr_gap", "backdoor ASR gap to retrain (pts)", target[2]))
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.5, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, (key, label, limit) in zip(axes[:, 0], panels, strict=True):
        ax.axhspan(-1e9, limit, xmin=0, xmax=1, color="tab:green", alpha=0.06)
        ax.axvline(target[0], color="tab:green", ls="--", lw=0.8)
        ax.axhline(limit, color="tab:green", ls="--", lw=0.8)
        for p in points:
            y = getattr(p, key)
            if y is None:
                continue
            x = p.speedup if math.isfinite(p.speedup) else edge
            spread = getattr(p, f"{key}_std")
            style = {"fmt": "*", "ms": 11, "color": "tab:red"} if p.method in best else {"fmt": "o", "ms": 6}
            ax.errorbar(x, y, yerr=spread or None, xerr=p.speedup_std or None, **style)
            ax.annotate(p.method + ("" if math.isfinite(p.speedup) else " (∞)"), (x, y), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylabel(label, fontsize=8)
        values = [getattr(p, key) for p in points if getattr(p, key) is not None]
        ax.set_ylim(min(-1.0, min(values, default=0) - 1), max(limit * 3, max(values, default=0) + 2))
    axes[-1, 0].set_xlabel("speed-up over retrain in client-epochs (log; ★ Pareto-optimal, shaded: the target)")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
