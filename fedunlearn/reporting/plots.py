"""PNG plots of a run: accuracy and backdoor ASR per method; test accuracy along training and along each
method's own steps (one panel per x unit: federated rounds, replay steps, server-side epochs)."""

from __future__ import annotations

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
