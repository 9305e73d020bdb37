"""How a run grows with the federation: 10, 100 and 1,000 clients with 40 samples each, the same rounds and
10 clients sampled per round (so the same client work per round).

    python benchmarks/scale.py                       # 10/100/1000 clients, 20 rounds, 10 sampled per round
    python benchmarks/scale.py fl.num_rounds=5       # extra arguments are Hydra overrides for every run
    python benchmarks/scale.py --sizes 10,10000      # other federation sizes

Each run trains, then forgets the first client sampled in round 1 with FedEraser (retrain is left out:
it would double the time).
Prints wall time, peak RSS of the whole process tree (driver, Ray, client actors) and of the driver,
and history bytes; writes benchmarks/out/scale.json and scale.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _measure import machine, run_fedunlearn, write_outputs

from fedunlearn.app import compose_config
from fedunlearn.fl.fedavg import training_schedule

SIZES = (10, 100, 1000)
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
        "unlearning.methods=[federaser]",
        "dataset.server_samples=100",
        "ray.num_cpus=2",
    ]


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
            leaving = training_schedule(compose_config([*overrides, "unlearning.methods=[]", "forget.clients=[]"]))[0][
                1
            ][0]
            print(f"{k} clients (forgetting client {leaving}) ...", flush=True)
            m = run_fedunlearn(Path(tmp) / f"k{k}", [*overrides, f"forget.clients=[{leaving}]"])
            train = m.results["training"]
            rows.append(
                {
                    "num_clients": k,
                    "wall_s": m.wall_s,
                    "train_wall_s": train["wall_s"],
                    "train_s_per_round": train["wall_s"] / len(train["rounds"]),
                    "federaser_wall_s": m.results["unlearning"]["federaser"]["wall_s"],
                    # Ray start, client discovery, data, evaluation, reports
                    "other_wall_s": m.wall_s - train["wall_s"] - m.results["unlearning"]["federaser"]["wall_s"],
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
        "| clients | wall s | × | start-up and rest s | train s/round | federaser s | peak RSS tree MB | × "
        "| peak RSS driver MB | history MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['num_clients']} | {r['wall_s']:.1f} | {r['wall_s'] / base['wall_s']:.2f} "
            f"| {r['other_wall_s']:.1f} | {r['train_s_per_round']:.2f} | {r['federaser_wall_s']:.1f} "
            f"| {r['peak_rss_tree_mb']:.0f} "
            f"| {r['peak_rss_tree_mb'] / base['peak_rss_tree_mb']:.2f} | {r['peak_rss_driver_mb']:.0f} "
            f"| {r['history_bytes'] / 1e6:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    write_outputs(OUT, "scale", {"machine": machine(), "per_round": PER_ROUND, "overrides": extra, "rows": rows}, table)


if __name__ == "__main__":
    main()
