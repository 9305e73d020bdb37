"""What a round costs beyond its clients' SGD: one round's clients trained through Flower's simulation engine (Ray
actors, clients in packs and one message per client) against the same clients' training in this process.

    python benchmarks/round_cost.py                 # digits + mlp, 20 clients (setting C's data), 18 per round
    python benchmarks/round_cost.py model=cnn       # extra arguments are Hydra overrides

About 3 minutes on 2 cores. For local epochs 0 (one SGD step per client), 2 and 4: the median wall of ``ROUNDS``
rounds of the same clients from the same model through ``FlowerTrainer.train`` (after two rounds of warm-up), and
the same clients' ``run_client`` in one process, one torch thread (what one actor does). The fixed cost per round is
the Flower round minus the in-process time shared over the actors: what a method that asks less of each client
per round does not save, and why its wall speed-up can lag its client-epoch speed-up where local training is short
(``wall_tracks_work.py``). Repeats the whole measurement ``REPEATS`` times and prints each figure's spread.
Writes benchmarks/out/round_cost.{json,md}.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _measure import machine, write_outputs

OUT = Path(__file__).parent / "out"
SETTING = ["partition=dirichlet", "partition.alpha=0.4", "fl.num_clients=20", "seed=5", "ray.num_cpus=2"]
FORGOTTEN = (0, 5)  # setting C's: its rounds after unlearning train the other 18
EPOCHS = (0.0, 2.0, 4.0)
ROUNDS = 12
REPEATS = 3


def in_process(overrides: list[str]) -> dict[float, float]:
    """Seconds of one round's clients trained in turn in this process (one torch thread), per local epochs."""
    import torch

    from fedunlearn.app import compose_config
    from fedunlearn.fl.params import get_params
    from fedunlearn.fl.task import CPU, TaskConfig, TrainPlan, run_client, warm_up

    torch.set_num_threads(1)
    cfg = compose_config(overrides)
    task = TaskConfig.from_config(cfg)
    model = task.worker_model(task.federation())
    warm_up(model)
    params = get_params(model)
    clients = [c for c in range(cfg.fl.num_clients) if c not in FORGOTTEN]
    out = {}
    for epochs in EPOCHS:
        plan = TrainPlan.from_config(cfg, epochs=epochs)
        walls = []
        for r in range(ROUNDS):
            t0 = time.perf_counter()
            for cid in clients:
                run_client(task, cid, params, plan, 1000 * r + cid, CPU)
            walls.append(time.perf_counter() - t0)
        out[epochs] = statistics.median(walls)
    return out


def through_flower(overrides: list[str]) -> tuple[dict[float, float], int]:
    """Seconds of one round through Flower's simulation engine per local epochs, and the number of actors."""
    from fedunlearn.app import compose_config
    from fedunlearn.data import federated_data
    from fedunlearn.fl.client_app import make_client_app
    from fedunlearn.fl.params import get_params
    from fedunlearn.fl.simulation import check_resources, simulate
    from fedunlearn.fl.task import TaskConfig, TrainPlan

    cfg = compose_config(overrides)
    task = TaskConfig.from_config(cfg)
    params = get_params(task.model_for(task.federation()))
    clients = [c for c in range(cfg.fl.num_clients) if c not in FORGOTTEN]

    def main(trainer: Any) -> tuple[dict[float, float], int]:
        out = {}
        for epochs in EPOCHS:
            plan = TrainPlan.from_config(cfg, epochs=epochs)
            walls = []
            for r in range(ROUNDS + 2):
                t0 = time.perf_counter()
                trainer.train(params, {c: 1000 * r + c for c in clients}, plan, f"bench-{r}")
                walls.append(time.perf_counter() - t0)
            out[epochs] = statistics.median(walls[2:])
        return out, check_resources(cfg.ray)

    sizes = [len(p) for p in federated_data(cfg).partitions]
    sim = simulate(cfg.ray, cfg.fl.num_clients, make_client_app(task), main, 0, lambda _: os._exit(1), sizes)
    result: tuple[dict[float, float], int] = sim.result
    return result


def table(reps: list[dict[str, Any]]) -> str:
    def spread(key: str, epochs: float) -> str:
        values = [1000 * r[key][epochs] for r in reps]
        return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"

    actors = reps[0]["actors"]
    lines = [
        f"Machine: {machine()}; {actors} actors. Median ms per round over {ROUNDS} rounds, median over {REPEATS} "
        "repetitions (their range). Fixed cost = Flower round − in-process / actors.",
        "",
        "| local epochs | in one process | through Flower, packs | fixed cost, packs | through Flower, a message per "
        "client | fixed cost, a message per client |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for e in EPOCHS:
        lines.append(
            f"| {e:g}{' (one SGD step)' if e == 0 else ''} | {spread('local', e)} | {spread('packs', e)} | "
            f"{spread('fixed_packs', e)} | {spread('messages', e)} | {spread('fixed_messages', e)} |"
        )
    return "\n".join(lines)


def main() -> None:
    overrides = [*SETTING, *sys.argv[1:]]
    reps: list[dict[str, Any]] = []
    for i in range(REPEATS):
        local = in_process(overrides)
        packs, actors = through_flower([*overrides, "ray.pack_clients=true"])
        messages, _ = through_flower([*overrides, "ray.pack_clients=false"])
        rep = {"local": local, "packs": packs, "messages": messages, "actors": actors}
        rep["fixed_packs"] = {e: packs[e] - local[e] / actors for e in EPOCHS}
        rep["fixed_messages"] = {e: messages[e] - local[e] / actors for e in EPOCHS}
        reps.append(rep)
        print(f"repetition {i + 1}/{REPEATS} done", flush=True)
    text = table(reps)
    payload = {"machine": machine(), "overrides": overrides, "rounds": ROUNDS, "repetitions": reps}
    write_outputs(OUT, "round_cost", payload, text)
    print(text)


if __name__ == "__main__":
    main()
