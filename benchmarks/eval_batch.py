"""How fast a forward pass over a data set runs with each evaluation batch size, for the models and inputs the
settings use: the 16 × 16 CNN on synthetic images, the 8 × 8 CNN and the MLP on digits.

    python benchmarks/eval_batch.py

Under a minute. For each model, the median over ``REPEATS`` passes over the training set (``predict_logits``,
as the server's evaluations and a client's received-model loss run it) with 2 torch threads (the driver) and 1
(a client actor), and whether every batch size gives the same logits. Picks nothing: it shows why
``evaluation.batch_size`` defaults to 128. Writes benchmarks/out/eval_batch.{json,md}.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _measure import machine, write_outputs

from fedunlearn.app.compose import compose_config
from fedunlearn.core.task import TaskConfig, predict_logits
from fedunlearn.data import federated_data

OUT = Path(__file__).parent / "out"
MODELS = {
    "cnn, synthetic 16 × 16": ["dataset=synthetic", "dataset.shape=[1,16,16]", "dataset.num_samples=8000", "model=cnn"],
    "cnn, digits 8 × 8": ["model=cnn"],
    "mlp, digits": ["model=mlp"],
}
BATCHES = (64, 128, 256, 512, 1024)
REPEATS = 5


def measure(overrides: list[str]) -> dict[str, Any]:
    cfg = compose_config(overrides)
    data = federated_data(cfg)
    model = TaskConfig.from_config(cfg).model_for(data)
    x = data.train.x
    out: dict[str, Any] = {"samples": len(x), "ms": {}}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        for b in BATCHES:
            predict_logits(model, x, b)
            walls = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                predict_logits(model, x, b)
                walls.append(1000 * (time.perf_counter() - t0))
            out["ms"][f"{threads}:{b}"] = [statistics.median(walls), min(walls), max(walls)]
    reference = predict_logits(model, x, BATCHES[-1])
    out["same_logits"] = all(np.array_equal(predict_logits(model, x, b), reference) for b in BATCHES)
    return out


def main() -> None:
    results = {label: measure(o) for label, o in MODELS.items()}
    lines = [
        f"Machine: {machine()}. Milliseconds per pass over the training set, median of {REPEATS} (range).",
        "",
        "| model | samples | threads | " + " | ".join(f"batch {b}" for b in BATCHES) + " | same logits |",
        "|---|---:|---:|" + "---:|" * len(BATCHES) + "---|",
    ]
    for label, r in results.items():
        for threads in (2, 1):
            cells = [r["ms"][f"{threads}:{b}"] for b in BATCHES]
            text = " | ".join(f"{m:.1f} ({lo:.1f}–{hi:.1f})" for m, lo, hi in cells)
            lines.append(f"| {label} | {r['samples']} | {threads} | {text} | {r['same_logits']} |")
    table = "\n".join(lines)
    write_outputs(OUT, "eval_batch", {"machine": machine(), "results": results}, table)
    print(table)


if __name__ == "__main__":
    main()
