"""GPU readiness: how clients share GPUs, how fast each model trains on GPU against CPU, and the whole showcase on
one GPU.

    python benchmarks/gpu.py                      # on a GPU machine: all three parts
    python benchmarks/gpu.py --logical 2          # on a CPU box: placement with 2 Ray logical GPUs, CPU throughput
    python benchmarks/gpu.py --parts throughput   # one part (placement, throughput, showcase)

* placement: a short training with ``ray.num_gpus_per_client`` = 1, 0.5 and 0.25 — how many client actors Ray
  places per GPU, how many clients train at once, and on which device they trained (results.json → placement).
  With ``--logical N`` Ray declares N logical GPUs (``ray.num_gpus=N``): placement is real, the training runs on
  the CPU.
* throughput: samples per second of one client's local SGD (``fedunlearn.core.task.train_local``) for cnn and
  flnet on 1×28×28 inputs and resnet18 on 3×32×32, batch 32, on the CPU and, if CUDA is there, on the GPU;
  median of three timed runs after a warm-up.
* showcase: ``fedunlearn unlearning.methods=all`` with four clients per GPU and the server's evaluations on it.

Writes benchmarks/out/gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._measure import machine, run_fedunlearn, write_outputs

OUT = Path(__file__).parent / "out"
FRACTIONS = (1.0, 0.5, 0.25)
MODELS = {"cnn": (1, 28, 28), "flnet": (1, 28, 28), "resnet18": (3, 32, 32)}
TINY = ["experiment=train_only", "dataset=synthetic", "dataset.num_samples=800", "dataset.server_samples=20",
        "fl.num_clients=8", "fl.num_rounds=2", "fl.local_epochs=1"]  # fmt: skip


def placement(logical: int | None, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for fraction in FRACTIONS:
        extra = [f"ray.num_gpus={logical}", f"ray.num_cpus={max(2, int(logical / fraction))}"] if logical else []
        m = run_fedunlearn(tmp / f"placement-{fraction}", [*TINY, f"ray.num_gpus_per_client={fraction}", *extra])
        p = m.results["placement"]
        rows.append({"num_gpus_per_client": fraction, "workers": p["workers"],
                     "workers_per_gpu_id": p["workers_per_gpu_id"],
                     "max_concurrent_clients": p["max_concurrent_clients"], "devices": p["devices"],
                     "training_s": m.results["training"]["wall_s"]})  # fmt: skip
        print(f"placement {fraction}: {rows[-1]}", flush=True)
    return rows


def throughput(model_name: str, device: str, samples: int = 512, repeats: int = 3) -> float:
    """Samples per second of one client's local SGD (one epoch over ``samples`` synthetic samples, batch 32)."""
    from fedunlearn.config import ModelConfig, OptimizerConfig
    from fedunlearn.core.task import TrainPlan, train_local
    from fedunlearn.data.datasets import ArrayDataset
    from fedunlearn.models import build_model

    shape = MODELS[model_name]
    hidden = {"cnn": 16, "flnet": 512, "resnet18": 64}[model_name]
    padding = [2, 2] if model_name == "flnet" else None
    cfg = ModelConfig(model_name, hidden, padding, OptimizerConfig(0.01, 0.9))
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.random((samples, *shape), dtype=np.float32), rng.integers(0, 10, samples))
    model = build_model(cfg, shape, 10, 0)
    plan = TrainPlan(1.0, 0.01, 32, 0.9)
    target = torch.device(device)
    train_local(model, data, plan, 0, target)  # warm-up: kernels, allocator
    times = []
    for i in range(repeats):
        if target.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_local(model, data, plan, i + 1, target)
        if target.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return samples / statistics.median(times)


def showcase(tmp: Path, logical: int | None) -> dict[str, Any]:
    extra = [f"ray.num_gpus={logical}"] if logical else []
    device = "cuda" if torch.cuda.is_available() else "cpu"
    m = run_fedunlearn(tmp / "showcase", ["unlearning.methods=all", "ray.num_gpus_per_client=0.25",
                                          f"evaluation.device={device}", *extra])  # fmt: skip
    u = m.results["unlearning"]
    return {"wall_s": m.wall_s, "training_s": m.results["training"]["wall_s"],
            "placement": {k: m.results["placement"][k] for k in ("workers", "workers_per_gpu_id", "devices")},
            "methods": {n: {"wall_s": e["wall_s"], "test_accuracy": e["metrics"]["test_accuracy"],
                            "backdoor_asr": e["metrics"]["backdoor_asr"]} for n, e in u.items()}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logical", type=int, default=None, help="declare N Ray logical GPUs (a CPU box)")
    parser.add_argument("--parts", nargs="+", default=["placement", "throughput", "showcase"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and args.logical is None and "placement" in args.parts:
        parser.error("no GPU visible: give --logical N to test placement with Ray logical GPUs")
    out: dict[str, Any] = {"machine": machine(), "cuda": torch.cuda.get_device_name(0) if cuda else None,
                           "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    lines = [f"Machine: {out['machine']}; GPU: {out['cuda'] or 'none (Ray logical GPUs for placement)'}.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        if "placement" in args.parts:
            out["placement"] = placement(None if cuda else args.logical, Path(tmp))
            lines += ["| GPU per client | workers | workers per GPU id | clients at once | devices |",
                      "|---:|---:|---|---:|---|"]  # fmt: skip
            lines += [f"| {r['num_gpus_per_client']} | {r['workers']} | {r['workers_per_gpu_id']} | "
                      f"{r['max_concurrent_clients']} | {r['devices']} |" for r in out["placement"]]  # fmt: skip
            lines.append("")
        if "throughput" in args.parts:
            devices = ["cpu", "cuda"] if cuda else ["cpu"]
            out["throughput"] = {m: {d: throughput(m, d) for d in devices} for m in args.models}
            lines += ["| model | " + " | ".join(f"{d} samples/s" for d in devices) + " | GPU / CPU |",
                      "|---|" + "---:|" * (len(devices) + 1)]  # fmt: skip
            for m, by in out["throughput"].items():
                ratio = f"{by['cuda'] / by['cpu']:.1f}×" if cuda else "-"
                lines.append(f"| {m} | " + " | ".join(f"{by[d]:.0f}" for d in devices) + f" | {ratio} |")
            lines.append("")
        if "showcase" in args.parts:
            shown = out["showcase"] = showcase(Path(tmp), None if cuda else args.logical)
            lines.append(f"Showcase, unlearning.methods=all: {shown['wall_s']:.0f} s in all, training "
                         f"{shown['training_s']:.1f} s; placement {shown['placement']}.")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    write_outputs(OUT, "gpu", out, text)


if __name__ == "__main__":
    main()
