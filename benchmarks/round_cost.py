"""What a round costs beyond its clients' SGD: one round's clients trained through Flower's simulation engine (Ray
actors, clients in packs and one message per client) against the same clients' training in this process.

    python benchmarks/round_cost.py                 # digits + mlp, 20 clients (setting C's data), 18 per round
    python benchmarks/round_cost.py model=cnn       # extra arguments are Hydra overrides
    python benchmarks/round_cost.py --timeline      # where the fixed cost goes, 1 and 2 packs per actor

About 3 minutes on 2 cores. For local epochs 0 (one SGD step per client), 2 and 4: the median wall of ``ROUNDS``
rounds of the same clients from the same model through ``FlowerTrainer.train`` (after two rounds of warm-up), and
the same clients' ``run_client`` in one process, one torch thread (what one actor does). The fixed cost per round is
the Flower round minus the in-process time shared over the actors: what a method that asks less of each client
per round does not save, and why its wall speed-up can lag its client-epoch speed-up where local training is short
(``wall_tracks_work.py``). Repeats the whole measurement ``REPEATS`` times and prints each figure's spread.
Writes benchmarks/out/round_cost.{json,md}.

``--timeline`` splits a packed round's time by what each actor was doing, from the clients' own start and end
times (same clock, one machine): waiting for its first pack (push → the pack's first client starts), training,
between its packs (a pack's last client ends → the next pack's first starts: the reply's trip back to the
driver and the next message's trip out, which Flower's engine does one after the other per actor), the last
reply's trip back, and idle at the end while the other actor finishes (imbalance); with one pack per actor and with
two (``ray.packs_per_actor``, repetitions interleaved). Writes benchmarks/out/round_timeline.{json,md}.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _measure import machine, write_outputs

OUT = Path(__file__).parent / "out"
SETTING = ["partition=dirichlet", "partition.alpha=0.4", "fl.num_clients=20", "seed=5", "ray.num_cpus=2"]
FORGOTTEN = (0, 5)  # setting C's: its rounds after unlearning train the other 18
EPOCHS = (0.0, 2.0, 4.0)
ROUNDS = 12
REPEATS = 3
STATES = ("first pack out", "training", "between packs", "last reply back", "idle at end", "wall")  # --timeline


def in_process(overrides: list[str]) -> dict[float, float]:
    """Seconds of one round's clients trained in turn in this process (one torch thread), per local epochs."""
    import torch

    from fedunlearn.app.compose import compose_config
    from fedunlearn.core.params import get_params
    from fedunlearn.core.task import CPU, TaskConfig, TrainPlan, run_client, warm_up

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


def flower_rounds(overrides: list[str], body: Callable[[Any, Any, Any, list[int]], Any]) -> tuple[Any, int]:
    """``body(trainer, cfg, params, clients)`` as the ServerApp of a Flower simulation of the setting (the model's
    initial parameters, the clients of a round after unlearning); its result, and the number of actors."""
    from fedunlearn.app.compose import compose_config
    from fedunlearn.core.params import get_params
    from fedunlearn.core.task import TaskConfig
    from fedunlearn.data import federated_data
    from fedunlearn.flower.client_app import make_client_app
    from fedunlearn.flower.simulation import check_resources, simulate

    cfg = compose_config(overrides)
    task = TaskConfig.from_config(cfg)
    params = get_params(task.model_for(task.federation()))
    clients = [c for c in range(cfg.fl.num_clients) if c not in FORGOTTEN]

    def main(trainer: Any) -> tuple[Any, int]:
        return body(trainer, cfg, params, clients), check_resources(cfg.ray)

    sizes = [len(p) for p in federated_data(cfg).partitions]
    sim = simulate(cfg.ray, cfg.fl.num_clients, make_client_app(task), main, 0, lambda _: os._exit(1), sizes)
    result: tuple[Any, int] = sim.result
    return result


def through_flower(overrides: list[str]) -> tuple[dict[float, float], int]:
    """Seconds of one round through Flower's simulation engine per local epochs, and the number of actors."""
    from fedunlearn.core.task import TrainPlan

    def body(trainer: Any, cfg: Any, params: Any, clients: list[int]) -> dict[float, float]:
        out = {}
        for epochs in EPOCHS:
            plan = TrainPlan.from_config(cfg, epochs=epochs)
            walls = []
            for r in range(ROUNDS + 2):
                t0 = time.perf_counter()
                trainer.train(params, {c: 1000 * r + c for c in clients}, plan, f"bench-{r}")
                walls.append(time.perf_counter() - t0)
            out[epochs] = statistics.median(walls[2:])
        return out

    return flower_rounds(overrides, body)


def timeline(overrides: list[str]) -> tuple[dict[float, dict[str, float]], int]:
    """Per local epochs, the median over rounds of the actors' time (ms) in each state of a packed round; and the
    number of actors."""
    from flwr.common import ConfigRecord

    from fedunlearn.core.task import TrainPlan
    from fedunlearn.flower import server_app
    from fedunlearn.flower.codec import number, record

    rounds: dict[str, dict[str, Any]] = {}
    exchange = server_app.FlowerTrainer._exchange

    def recorded(self: Any, messages: list[Any], group: str) -> Any:
        if not group.startswith("timeline-"):  # node discovery, warm-up
            yield from exchange(self, messages, group)
            return
        pushed = time.time()
        packs = rounds.setdefault(group, {"pushed": pushed, "packs": []})["packs"]
        for reply in exchange(self, messages, group):
            where = [record(reply.content, k, ConfigRecord) for k in reply.content if k.startswith("placement")]
            spans = [(number(w, "started"), number(w, "ended")) for w in where]
            packs.append({"pid": number(where[0], "pid"), "replied": time.time(), "start": min(a for a, _ in spans),
                          "end": max(b for _, b in spans), "train": sum(b - a for a, b in spans)})  # fmt: skip
            yield reply

    def body(trainer: Any, cfg: Any, params: Any, clients: list[int]) -> dict[float, dict[str, float]]:
        out = {}
        for epochs in (0.0, 2.0):
            plan = TrainPlan.from_config(cfg, epochs=epochs)
            states: dict[str, list[float]] = {}
            for r in range(ROUNDS + 2):
                group = f"timeline-{epochs}-{r}"
                trainer.train(params, {c: 1000 * r + c for c in clients}, plan, group)
                if r >= 2:
                    for k, v in split(rounds[group]).items():
                        states.setdefault(k, []).append(v)
            out[epochs] = {k: statistics.median(v) for k, v in states.items()}
        return out

    server_app.FlowerTrainer._exchange = recorded  # type: ignore[method-assign]
    try:
        return flower_rounds([*overrides, "ray.pack_clients=true"], body)
    finally:
        server_app.FlowerTrainer._exchange = exchange  # type: ignore[method-assign]


def split(round_: dict[str, Any]) -> dict[str, float]:
    """One round's wall and, averaged over the actors, ms in each state (they add up to the wall)."""
    pushed, packs = round_["pushed"], round_["packs"]
    wall = max(p["replied"] for p in packs) - pushed
    by_actor: dict[float, list[dict[str, float]]] = {}
    for p in sorted(packs, key=lambda p: p["start"]):
        by_actor.setdefault(p["pid"], []).append(p)
    states = dict.fromkeys(STATES[:-1], 0.0)
    for own in by_actor.values():
        states["first pack out"] += own[0]["start"] - pushed
        states["training"] += sum(p["train"] for p in own)
        # a pack's own client-to-client gaps count as between packs: time the actor was not training
        gaps = sum(p["end"] - p["start"] - p["train"] for p in own)
        states["between packs"] += gaps + sum(b["start"] - a["end"] for a, b in itertools.pairwise(own))
        states["last reply back"] += own[-1]["replied"] - own[-1]["end"]
        states["idle at end"] += pushed + wall - own[-1]["replied"]
    out = {k: 1000 * v / len(by_actor) for k, v in states.items()}
    out["wall"] = 1000 * wall
    return out


def timeline_table(reps: dict[int, list[dict[float, dict[str, float]]]], actors: int) -> str:
    lines = [
        f"Machine: {machine()}; {actors} actors. Ms per round: the median over {ROUNDS} rounds of the actors' mean "
        "time in each state (in each round the states add up to its wall), median over "
        f"{REPEATS} repetitions (their range).",
        "",
        "| local epochs | packs per actor | " + " | ".join(STATES) + " |",
        "|---:|---:|" + "---:|" * len(STATES),
    ]
    for e in next(iter(reps.values()))[0]:
        for per_actor, runs in reps.items():
            values = [[r[e][s] for r in runs] for s in STATES]
            cells = " | ".join(f"{statistics.median(v):.1f} ({min(v):.1f}–{max(v):.1f})" for v in values)
            lines.append(f"| {e:g}{' (one SGD step)' if e == 0 else ''} | {per_actor} | {cells} |")
    return "\n".join(lines)


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
    args = sys.argv[1:]
    if "--timeline" in args:
        overrides = [*SETTING, *(a for a in args if a != "--timeline")]
        states: dict[int, list[dict[float, dict[str, float]]]] = {1: [], 2: []}
        for _ in range(REPEATS):
            for per_actor, runs in states.items():
                result, actors = timeline([*overrides, f"ray.packs_per_actor={per_actor}"])
                runs.append(result)
        text = timeline_table(states, actors)
        payload: dict[str, Any] = {"machine": machine(), "overrides": overrides, "repetitions": states}
        write_outputs(OUT, "round_timeline", payload, text)
        print(text)
        return
    overrides = [*SETTING, *args]
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
