"""PNG plots of a run: accuracy and backdoor ASR per method; test accuracy per round in training and recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_methods(run_dir: Path, results: dict[str, Any]) -> Path:
    names = ["before", *results["unlearning"]]
    metrics = [results["before_unlearning"]["metrics"], *(e["metrics"] for e in results["unlearning"].values())]
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.9), 3.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [m["test_accuracy"] or 0 for m in metrics], width=0.4, label="test accuracy")
    ax.bar([i + 0.2 for i in x], [m["backdoor_asr"] or 0 for m in metrics], width=0.4, label="backdoor ASR")
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title("Accuracy and backdoor ASR per method")
    fig.tight_layout()
    path = run_dir / "methods.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rounds(run_dir: Path, results: dict[str, Any]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    train = results["training"]["rounds"]
    ax.plot([r["round"] for r in train], [r["test_accuracy"] for r in train], label="training", color="black")
    for name, entry in results.get("unlearning", {}).items():
        rec = entry.get("recovery_rounds") or []
        if rec:
            ax.plot(range(1, len(rec) + 1), [r["test_accuracy"] for r in rec], label=name, alpha=0.8)
    ax.set_xlabel("round (training) / step (unlearning)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = run_dir / "rounds.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
