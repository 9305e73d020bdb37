"""fedunlearn's overhead against a minimal plain Flower FedAvg app, per round, measured side by side.

    python benchmarks/overhead.py                 # default FL settings (10 digits clients, mlp, 4 local epochs)
    python benchmarks/overhead.py fl.num_rounds=10 # extra arguments are Hydra overrides for every run

Four variants train the same model on the same partitions for the same rounds and local epochs, each in its own
process with its own Ray: (a) the plain Flower Message-API app below (ServerApp sends train messages to every
node, FedAvg in numpy, central test evaluation each round), (b) fedunlearn with history.record=false, (c) with the
history recorded in float32 and (d) in float16. The ClientApps of (a) and of fedunlearn run the same local SGD
(``fedunlearn.core.task.train_local``) so that the difference is the framework's. Per-round time is
the training wall time after round 1 (Ray actors warm up in round 1) divided by the remaining rounds.
Repetitions are interleaved (a, b, c, d, a, b, ...); each variant's ratio to (a) is the median over repetitions of
the ratio within a repetition, which cancels drifts of the machine's speed between repetitions (the ratio of the
medians is printed too). Writes benchmarks/out/overhead.json and .md.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _measure import machine, run_fedunlearn, write_outputs

from fedunlearn.app.compose import compose_config

REPS = 9
OUT = Path(__file__).parent / "out"
BASE = ["experiment=train_only", "ray.num_cpus=2"]
VARIANTS = {
    "b: fedunlearn, history off": ["history.record=false"],
    "c: fedunlearn, history float32": ["history.dtype=float32"],
    "d: fedunlearn, history float16": ["history.dtype=float16"],
}
PLAIN = "a: plain Flower FedAvg"


def plain_flower(overrides: list[str], out: Path) -> None:
    """Variant (a), run in a child process: a minimal FedAvg ServerApp/ClientApp on Flower's simulation engine."""
    import logging

    import numpy as np
    import torch
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from fedunlearn.core.task import TrainPlan, train_local
    from fedunlearn.data import federated_data
    from fedunlearn.flower.codec import number
    from fedunlearn.models import build_model

    logging.getLogger("flwr").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    cfg = compose_config(overrides)
    fl = cfg.fl
    client_app, server_app = ClientApp(), ServerApp()

    def new_model() -> torch.nn.Module:
        data = federated_data(cfg)
        return build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        cid = int(context.node_config["partition-id"])
        data = federated_data(cfg)
        model = new_model()
        arrays = msg.content.array_records["arrays"]
        model.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in arrays.items()})
        c = msg.content.config_records["config"]
        plan = TrainPlan(fl.local_epochs, fl.lr, fl.batch_size, fl.momentum)
        train_local(model, data.client(cid), plan, int(number(c, "seed")), torch.device("cpu"))
        state = {k: Array(v.detach().numpy().copy()) for k, v in model.state_dict().items()}
        reply = RecordDict({"arrays": ArrayRecord(state), "n": ConfigRecord({"n": len(data.partitions[cid])})})
        return Message(reply, reply_to=msg)

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        data = federated_data(cfg)
        model = new_model()
        params = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
        while len(list(grid.get_node_ids())) < fl.num_clients:
            time.sleep(0.05)
        nodes = sorted(grid.get_node_ids())
        x, y = torch.from_numpy(data.test.x), torch.from_numpy(data.test.y)
        walls, accuracy = [], 0.0
        for round_ in range(1, fl.num_rounds + 1):
            t0 = time.perf_counter()
            record = ArrayRecord({k: Array(v) for k, v in params.items()})
            messages = [
                Message(
                    RecordDict({"arrays": record, "config": ConfigRecord({"seed": round_ * 1000 + i})}),
                    dst_node_id=node,
                    message_type=MessageType.TRAIN,
                    group_id=str(round_),
                )
                for i, node in enumerate(nodes)
            ]
            replies = [r for r in grid.send_and_receive(messages) if not r.has_error()]
            sizes = np.array([number(r.content.config_records["n"], "n") for r in replies])
            weights = sizes / sizes.sum()
            states = [{k: a.numpy() for k, a in r.content.array_records["arrays"].items()} for r in replies]
            params = {k: sum(w * s[k] for w, s in zip(weights, states, strict=True)).astype(v.dtype)
                      for k, v in params.items()}  # fmt: skip
            model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})
            with torch.no_grad():
                logits = model.eval()(x)
                accuracy = float((logits.argmax(1) == y).float().mean())
                float(torch.nn.functional.cross_entropy(logits, y))
            walls.append(time.perf_counter() - t0)
        out.write_text(json.dumps({"round_wall_s": walls, "final_accuracy": accuracy}))

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=fl.num_clients,
        backend_config={"init_args": {"num_cpus": cfg.ray.num_cpus or 2, "logging_level": "ERROR"},
                        "client_resources": {"num_cpus": 1.0, "num_gpus": 0.0}},
    )  # fmt: skip


def per_round(walls: list[float], total: float | None = None) -> float:
    """Seconds per round after round 1 (from per-round walls, or from a total that includes round 1)."""
    rest = (total - walls[0]) if total is not None else sum(walls[1:])
    return rest / (len(walls) - 1)


def measure_plain(overrides: list[str], tmp: Path, rep: int) -> tuple[float, float]:
    import subprocess

    out = tmp / f"plain-{rep}.json"
    code = "import sys, overhead; overhead.plain_flower(sys.argv[2:], __import__('pathlib').Path(sys.argv[1]))"
    subprocess.run(
        [sys.executable, "-c", code, str(out), *overrides], cwd=Path(__file__).parent, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    return per_round(result["round_wall_s"]), result["final_accuracy"]


def main() -> None:
    extra = sys.argv[1:]
    samples: dict[str, list[float]] = {PLAIN: [], **{k: [] for k in VARIANTS}}
    accuracy: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(REPS):
            print(f"repetition {rep + 1}/{REPS}", flush=True)
            sec, accuracy[PLAIN] = measure_plain([*BASE, *extra], Path(tmp), rep)
            samples[PLAIN].append(sec)
            for name, overrides in VARIANTS.items():
                m = run_fedunlearn(Path(tmp) / f"{rep}-{len(samples[name])}-{name[0]}", [*BASE, *overrides, *extra])
                train = m.results["training"]
                samples[name].append(per_round([r["wall_s"] for r in train["rounds"]], train["wall_s"]))
                accuracy[name] = train["rounds"][-1]["test_accuracy"]
    median = {k: statistics.median(v) for k, v in samples.items()}
    paired = {k: statistics.median(s / p for s, p in zip(v, samples[PLAIN], strict=True)) for k, v in samples.items()}
    a = median[PLAIN]
    lines = [
        f"Machine: {machine()}. {REPS} interleaved repetitions; overrides: {' '.join(extra) or 'none'}.",
        "",
        "| variant | s per round (median) | × plain Flower (median of paired ratios) | × plain Flower (ratio of "
        "medians) | final test acc | all repetitions (s/round) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, sec in median.items():
        reps = ", ".join(f"{s:.3f}" for s in samples[name])
        lines.append(f"| {name} | {sec:.3f} | {paired[name]:.3f} | {sec / a:.3f} | {accuracy[name]:.3f} | {reps} |")
    table = "\n".join(lines)
    print(table)
    payload: dict[str, Any] = {
        "machine": machine(), "overrides": extra, "repetitions": REPS, "seconds_per_round": samples,
        "median_seconds_per_round": median, "ratio_to_plain": paired,
        "ratio_of_medians": {k: v / a for k, v in median.items()},
    }  # fmt: skip
    write_outputs(OUT, "overhead", payload, table)


if __name__ == "__main__":
    main()
