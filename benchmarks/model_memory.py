"""Memory at model scale: ResNet-18 (11.2M parameters) on 3×32×32 synthetic images, 10 clients × 10 rounds,
then FedEraser; the history in float32 and in float16.

    python benchmarks/model_memory.py                     # both dtypes, 16 samples per client
    python benchmarks/model_memory.py fl.num_rounds=4     # extra arguments are Hydra overrides for every run

Few samples per client keep the training cheap on 2 cores; what grows is the model: every round stores 11 model-
sized files (10 updates and the global model), about 4.9 GB of float32 over 10 rounds. Prints the history bytes
against the formula, peak RSS of the whole process tree and of the driver, and the wall time of training and of
FedEraser; writes benchmarks/out/model_memory.json and .md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _measure import machine, run_fedunlearn, write_outputs

OUT = Path(__file__).parent / "out"
CLIENTS, ROUNDS, PER_CLIENT, TEST = 10, 10, 16, 200
SETTINGS = [
    "dataset=synthetic",
    "dataset.shape=[3,32,32]",
    f"dataset.num_samples={CLIENTS * PER_CLIENT + TEST + 100}",
    f"dataset.test_fraction={(TEST + 100) / (CLIENTS * PER_CLIENT + TEST + 100)}",
    "dataset.server_samples=100",
    "model=resnet18",
    f"fl.num_clients={CLIENTS}",
    f"fl.num_rounds={ROUNDS}",
    "fl.local_epochs=1",
    "forget.clients=[0]",
    "unlearning.methods=[federaser]",
    "ray.num_cpus=2",
]


def main() -> None:
    extra = sys.argv[1:]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "float16"):
            print(f"history.dtype={dtype} ...", flush=True)
            m = run_fedunlearn(Path(tmp) / dtype, [*SETTINGS, f"history.dtype={dtype}", *extra])
            res = m.results
            parameters, width = res["training"]["num_parameters"], np.dtype(dtype).itemsize
            rows.append(
                {
                    "dtype": dtype,
                    "parameters": parameters,
                    "history_bytes": res["history"]["bytes"],
                    "formula_bytes": res["history"]["rounds_stored"] * (CLIENTS + 1) * parameters * width,
                    "round_updates_bytes": CLIENTS * parameters * width,
                    "peak_rss_tree_mb": m.peak_rss_tree_mb,
                    "peak_rss_driver_mb": m.peak_rss_driver_mb,
                    "wall_s": m.wall_s,
                    "train_wall_s": res["training"]["wall_s"],
                    "federaser_wall_s": res["unlearning"]["federaser"]["wall_s"],
                    "federaser_test_accuracy": res["unlearning"]["federaser"]["metrics"]["test_accuracy"],
                }
            )
    lines = [
        f"Machine: {machine()}. resnet18 ({rows[0]['parameters']:,} parameters), {CLIENTS} clients × {ROUNDS} rounds, "
        f"{PER_CLIENT} samples per client; overrides: {' '.join(extra) or 'none'}.",
        "",
        "| history dtype | history GB | formula GB | one round's updates GB | peak RSS tree GB | peak RSS driver GB "
        "| wall s | train s | federaser s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dtype']} | {r['history_bytes'] / 1e9:.2f} | {r['formula_bytes'] / 1e9:.2f} "
            f"| {r['round_updates_bytes'] / 1e9:.2f} | {r['peak_rss_tree_mb'] / 1024:.2f} "
            f"| {r['peak_rss_driver_mb'] / 1024:.2f} | {r['wall_s']:.0f} | {r['train_wall_s']:.0f} "
            f"| {r['federaser_wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    write_outputs(OUT, "model_memory", {"machine": machine(), "overrides": extra, "rows": rows}, table)


if __name__ == "__main__":
    main()
