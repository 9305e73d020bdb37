"""How a run grows with the federation: 10, 100, 1,000 and 10,000 clients with 40 samples each, the same rounds
and 10 clients sampled per round (so the same client work per round).

    python benchmarks/scale.py                       # 10/100/1000/10000 clients, 20 rounds, 10 sampled per round
    python benchmarks/scale.py fl.num_rounds=5       # extra arguments are Hydra overrides for every run
    python benchmarks/scale.py --sizes 10,10000      # other federation sizes

Each run trains, then forgets the first client sampled in the middle round (round 11 of 20) with retrain, rollback
and FedEraser: in a large federation that client took part in few rounds, which rollback exploits (it restarts from
the round before the client first trained).
Prints start-up, per-round time, each method's wall time, peak RSS of the whole process tree (driver, Ray, client
actors) and of the driver, and history bytes, with ratios to the first size; writes benchmarks/out/scale.json
and scale.md.
"""

from __future__ import annotations

import datetime
import sys
import tempfile
import time
from pathlib import Path

from _measure import machine, run_fedunlearn, write_outputs

from fedunlearn.app.compose import compose_config
from fedunlearn.experiment.schedule import training_schedule

SIZES = (10, 100, 1000, 10_000)
METHODS = ("retrain", "rollback", "federaser")
PER_ROUND = 10
SAMPLES_PER_CLIENT = 40
OUT = Path(__file__).parent / "out"


HELD_OUT = 10_000  # one test set (9,900 samples, plus the server's 100) for every size


def settings(num_clients: int) -> list[str]:
    train = SAMPLES_PER_CLIENT * num_clients
    total = max(50_000, train + HELD_OUT)
    return [
        "dataset=synthetic",
        f"dataset.num_samples={total}",
        f"dataset.test_fraction={HELD_OUT / total}",
        f"dataset.max_train_samples={train}",  # the same data per client
        "fl.num_rounds=20",
        "fl.local_epochs=1",
        f"fl.num_clients={num_clients}",
        f"fl.fraction_train={PER_ROUND / num_clients}",
        f"unlearning.methods=[{','.join(METHODS)}]",
        "dataset.server_samples=100",
        "ray.num_cpus=2",
    ]


def first_round_start(run_dir: Path, round_wall_s: float) -> float:
    """When round 1 began (epoch seconds): its log line's time stamp minus its duration."""
    for log in run_dir.glob("*.log"):
        for line in log.read_text().splitlines():
            if "[train] round 1/" in line:
                stamp = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
                return stamp.timestamp() - round_wall_s
    raise RuntimeError(f"no round-1 line in {run_dir}/*.log")


def main() -> None:
    extra = sys.argv[1:]
    sizes = SIZES
    if "--sizes" in extra:
        at = extra.index("--sizes")
        sizes = tuple(int(k) for k in extra[at + 1].split(","))
        del extra[at : at + 2]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in sizes:
            overrides = [*settings(k), *extra]
            schedule = training_schedule(compose_config([*overrides, "unlearning.methods=[]", "forget.clients=[]"]))
            middle = schedule[len(schedule) // 2]
            leaving = middle[1][0]
            took_part = sum(leaving in clients for _, clients in schedule)
            print(f"{k} clients (forgetting client {leaving}, sampled in {took_part} rounds) ...", flush=True)
            launched = time.time()
            m = run_fedunlearn(Path(tmp) / f"k{k}", [*overrides, f"forget.clients=[{leaving}]"])
            train, unlearning = m.results["training"], m.results["unlearning"]
            startup = first_round_start(Path(tmp) / f"k{k}", train["rounds"][0]["wall_s"]) - launched
            rows.append(
                {
                    "num_clients": k,
                    "forgotten": leaving,
                    "forgotten_rounds": took_part,
                    "wall_s": m.wall_s,
                    "startup_s": startup,  # launch → round 1 starts: Python, Ray, data, SuperNodes
                    "train_wall_s": train["wall_s"],
                    "train_s_per_round": train["wall_s"] / len(train["rounds"]),
                    **{f"{name}_wall_s": unlearning[name]["wall_s"] for name in METHODS},
                    **{f"{name}_client_epochs": unlearning[name]["client_epochs"] for name in METHODS},
                    # evaluation, certificates, reports, shutdown
                    "rest_wall_s": m.wall_s - startup - train["wall_s"] - sum(unlearning[n]["wall_s"] for n in METHODS),
                    "peak_rss_tree_mb": m.peak_rss_tree_mb,
                    "peak_rss_driver_mb": m.peak_rss_driver_mb,
                    "history_bytes": m.results["history"]["bytes"],
                    "test_accuracy": train["rounds"][-1]["test_accuracy"],
                }
            )
    base = rows[0]
    lines = [
        f"Machine: {machine()}. {SAMPLES_PER_CLIENT} samples per client, {PER_ROUND} sampled per round; "
        f"overrides: {' '.join(extra) or 'none'}.",
        "",
        "| clients | wall s | start-up s | × | train s/round | × | retrain s | rollback s (client-epochs) "
        "| federaser s | rest s | peak RSS tree MB | × | peak RSS driver MB | history MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['num_clients']} | {r['wall_s']:.1f} "
            f"| {r['startup_s']:.1f} | {r['startup_s'] / base['startup_s']:.2f} "
            f"| {r['train_s_per_round']:.2f} | {r['train_s_per_round'] / base['train_s_per_round']:.2f} "
            f"| {r['retrain_wall_s']:.1f} | {r['rollback_wall_s']:.1f} ({r['rollback_client_epochs']:g}) "
            f"| {r['federaser_wall_s']:.1f} | {r['rest_wall_s']:.1f} | {r['peak_rss_tree_mb']:.0f} "
            f"| {r['peak_rss_tree_mb'] / base['peak_rss_tree_mb']:.2f} | {r['peak_rss_driver_mb']:.0f} "
            f"| {r['history_bytes'] / 1e6:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    write_outputs(OUT, "scale", {"machine": machine(), "per_round": PER_ROUND, "overrides": extra, "rows": rows}, table)


if __name__ == "__main__":
    main()
