"""The cost–quality frontier: every registered method, with its default parameters, against retraining — on the
benchmark's setting and on held-out settings nobody tuned for, and against the length of training; every decision
over seeds, on the 95% t-interval's worse end.

    python benchmarks/frontier.py                    # every setting below, 3 seeds each (many hours on 2 cores)
    python benchmarks/frontier.py --quick            # the benchmark setting and one held-out setting, 50 rounds
    python benchmarks/frontier.py --settings 4,6     # some settings (by index), into frontier-rerun.*
    python benchmarks/frontier.py --seeds 5          # more seeds per setting
    python benchmarks/frontier.py --settings 0,1 "unlearning.methods=[retrain,puf]"   # any Hydra override after

Target: ≥ 10× fewer client-epochs and ≥ 5× less wall time than retrain, test accuracy within 1 point and backdoor
ASR within 2 points of the retrained model, with default parameters, on every setting. Each (setting, seed) is one
``fedunlearn`` run through Flower (all methods on the same trained model, measured side by side); the gaps and
speed-ups are paired within a run. A method passes a setting only if, over the seeds, the interval's lower end of
each speed-up reaches its target and the upper end of each gap stays within its tolerance (one seed decides
nothing). Methods that take less than REPEAT_BELOW seconds are run twice more on the same trained model (the run's
own resume: their stages are dropped from the checkpoint) and their wall time in that run is the median of three.
Writes benchmarks/out/frontier.{json,md} and one frontier plot per setting plus the training-length plot.
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _measure import machine, run_again, run_fedunlearn, write_outputs

from fedunlearn.reporting.stats import at_least, at_most, interval

OUT = Path(__file__).parent / "out"
ROUNDS = 100
REPEAT_BELOW = 15.0  # seconds: methods this fast are measured three times (their wall time is noisy)
TARGET = {"speedup_epochs": 10.0, "speedup_compute": 10.0, "speedup_wall": 5.0, "accuracy_gap": 1.0, "asr_gap": 2.0}
FIXED_ROUND_MS = 20.0  # Flower's fixed cost of a round on this machine (benchmarks/round_cost.py: 18-21 ms)
TRACKS = 0.9  # wall tracks work: wall speed-up ≥ 0.9 × compute speed-up, where a round's compute ≥ 10× that cost

BENCHMARK = [  # benchmarks/unlearning_cost.py's setting: a cnn on image-shaped synthetic data, client 0 backdoored
    "dataset=synthetic", "dataset.shape=[1,16,16]", "dataset.num_samples=8000", "dataset.class_sep=1.2", "model=cnn",
    "fl.num_clients=20", "fl.local_epochs=2", "fl.batch_size=32", "backdoor.clients=[0]", "forget.clients=[0]",
]  # fmt: skip
SETTINGS: dict[str, list[str]] = {
    "benchmark": BENCHMARK,
    "digits+mlp, Dirichlet 0.4, two clients forgotten": [
        "partition=dirichlet", "partition.alpha=0.4", "fl.num_clients=20", "seed=5", "backdoor.clients=[0,5]",
        "forget.clients=[0,5]",
    ],
    "digits+mlp, 40 clients, half sampled": [
        "fl.num_clients=40", "fl.fraction_train=0.5", "seed=3", "backdoor.clients=[0]", "forget.clients=[0]",
    ],
    "cnn+synthetic, Dirichlet 0.3, 30 clients, half sampled": [
        "dataset=synthetic", "dataset.shape=[1,16,16]", "dataset.num_samples=8000", "dataset.class_sep=1.2",
        "model=cnn", "partition=dirichlet", "partition.alpha=0.3", "fl.num_clients=30", "fl.fraction_train=0.5",
        "fl.local_epochs=2", "fl.batch_size=32", "seed=2", "backdoor.clients=[1]", "forget.clients=[1]",
    ],
    "digits+cnn": ["model=cnn", "seed=4", "backdoor.clients=[2]", "forget.clients=[2]"],
    # Fashion-MNIST at the papers' scale (Debian's dataset-fashion-mnist), with the small cnn
    "fashion_mnist+cnn, 100 clients, 10 sampled, Dirichlet 0.3, 200 rounds": [
        "dataset=fashion_mnist", "model=cnn", "partition=dirichlet", "partition.alpha=0.3", "fl.num_clients=100",
        "fl.fraction_train=0.1", "fl.num_rounds=200", "seed=6", "backdoor.clients=[0]", "forget.clients=[0]",
    ],
    "fashion_mnist+cnn, 20 clients, two forgotten": [
        "dataset=fashion_mnist", "model=cnn", "fl.num_clients=20", "seed=7", "backdoor.clients=[3,11]",
        "forget.clients=[3,11]",
    ],
}  # fmt: skip
LENGTHS = (20, 50, 100, 200)
COMMON = ["unlearning.methods=all", "ray.num_cpus=2"]


def repeat_fast(run_dir: Path, overrides: list[str], methods: list[str], times: int) -> dict[str, list[float]]:
    """Run ``methods`` ``times`` more on the run's trained model (their stages dropped from a copy's checkpoint)."""
    walls: dict[str, list[float]] = {m: [] for m in methods}
    for i in range(times):
        again = run_again(run_dir, run_dir.parent / f"{run_dir.name}-again-{i}", overrides, methods)
        for m in methods:
            walls[m].append(again[m]["wall_s"])
    return walls


def rows_of(results: dict[str, Any], extra_walls: dict[str, list[float]]) -> list[dict[str, Any]]:
    u = results["unlearning"]
    ref = u["retrain"]
    rows = []
    for name, e in sorted(u.items()):
        m, r = e["metrics"], ref["metrics"]
        walls = [e["wall_s"], *extra_walls.get(name, [])]
        wall = statistics.median(walls)
        speed_epochs = (e["speedup_vs_retrain"] or {}).get("client_epochs")
        speed_compute = (e["speedup_vs_retrain"] or {}).get("compute")
        row = {
            "method": name,
            "client_epochs": e["client_epochs"],
            "speedup_epochs": math.inf if speed_epochs is None else speed_epochs,
            "compute_sge": e["compute"]["sge"],
            "speedup_compute": math.inf if speed_compute is None else speed_compute,
            "wall_s": wall,
            "wall_s_all": walls,
            "speedup_wall": ref["wall_s"] / wall,
            "speedup_wall_spread": [ref["wall_s"] / max(walls), ref["wall_s"] / min(walls)],
            "megabytes": (e["bytes"]["to_clients"] + e["bytes"]["from_clients"]) / 1e6,
            "speedup_bytes": (e["speedup_vs_retrain"] or {}).get("bytes"),
            "test_accuracy": m["test_accuracy"],
            "backdoor_asr": m["backdoor_asr"],
            "accuracy_gap": 100 * (r["test_accuracy"] - m["test_accuracy"]),
            "asr_gap": 100 * (m["backdoor_asr"] - r["backdoor_asr"]),
            "retrain_z": m.get("retrain_z"),  # with evaluation.references: indistinguishability from retraining
            "stop": e.get("stop"),
        }
        row["misses"] = misses(row)
        rows.append(row)
    return rows


def misses(row: dict[str, Any]) -> list[str]:
    """The target's criteria one run's row misses, each with its value (empty: it passes in that run)."""
    out = []
    if row["speedup_epochs"] < TARGET["speedup_epochs"]:
        out.append(f"epochs {row['speedup_epochs']:.1f}×")
    if row["speedup_compute"] < TARGET["speedup_compute"]:
        out.append(f"compute {row['speedup_compute']:.1f}×")
    if row["speedup_wall"] < TARGET["speedup_wall"]:
        out.append(f"wall {row['speedup_wall']:.1f}×")
    if row["accuracy_gap"] > TARGET["accuracy_gap"]:
        out.append(f"acc {row['accuracy_gap']:+.1f} pts")
    if row["asr_gap"] > TARGET["asr_gap"]:
        out.append(f"ASR {row['asr_gap']:+.1f} pts")
    return out


def over_seeds(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method, over the seeds' runs of one setting: each figure's interval and the decision on its worse end."""
    methods = sorted({row["method"] for run in runs for row in run["rows"]} - {"retrain"})
    out = []
    for m in methods:
        rows = [next(r for r in run["rows"] if r["method"] == m) for run in runs]
        keys = ("speedup_epochs", "speedup_compute", "speedup_wall", "accuracy_gap", "asr_gap")
        values = {k: [r[k] for r in rows] for k in keys}
        checks = {
            "speedup_epochs": at_least(values["speedup_epochs"], TARGET["speedup_epochs"]),
            "speedup_compute": at_least(values["speedup_compute"], TARGET["speedup_compute"]),
            "speedup_wall": at_least(values["speedup_wall"], TARGET["speedup_wall"]),
            "accuracy_gap": at_most(values["accuracy_gap"], TARGET["accuracy_gap"]),
            "asr_gap": at_most(values["asr_gap"], TARGET["asr_gap"]),
        }
        stats = {k: interval([min(v, 1e6) for v in vs]) for k, vs in values.items()}
        out.append({
            "method": m, "n": len(rows), "passes": all(checks.values()),
            "misses": [k for k, ok in checks.items() if not ok],
            **{k: None if v is None else {"mean": v.mean, "ci95": v.ci95, "n": v.n} for k, v in stats.items()},
            "infinite_epochs": all(math.isinf(v) for v in values["speedup_epochs"]),
            "infinite_compute": all(math.isinf(v) for v in values["speedup_compute"]),
            "wall_over_compute": _mean(r["speedup_wall"] / r["speedup_compute"] for r in rows
                                       if math.isfinite(r["speedup_compute"])),
            "retrain_z": _mean(r["retrain_z"] for r in rows if r.get("retrain_z") is not None),
        })  # fmt: skip
    return out


def measure(label: str, overrides: list[str], tmp: Path) -> dict[str, Any]:
    run_dir = tmp / label.replace(" ", "_").replace(",", "").replace("+", "").replace("=", "")
    print(f"[{label}] {' '.join(overrides)}", flush=True)
    m = run_fedunlearn(run_dir, [*COMMON, *overrides])  # a user's overrides (e.g. unlearning.methods) win
    fast = [n for n, e in m.results["unlearning"].items() if e["wall_s"] < REPEAT_BELOW and n != "retrain"]
    walls = repeat_fast(run_dir, [*COMMON, *overrides], fast, 2) if fast else {}
    if (run_dir / "frontier.png").exists():
        OUT.mkdir(parents=True, exist_ok=True)
        shutil.copy(run_dir / "frontier.png", OUT / f"frontier-{run_dir.name}.png")
    before = m.results["before_unlearning"]["metrics"]
    retrain = m.results["unlearning"]["retrain"]
    training = m.results["training"]
    round_ms = 1000 * training["wall_s"] / len(training["rounds"])
    return {
        "label": label,
        "overrides": overrides,
        "wall_s": m.wall_s,
        "training": {"wall_s": training["wall_s"], "diverged": training["diverged"], "round_ms": round_ms},
        "before": {"test_accuracy": before["test_accuracy"], "backdoor_asr": before["backdoor_asr"]},
        "retrain": {"test_accuracy": retrain["metrics"]["test_accuracy"],
                    "backdoor_asr": retrain["metrics"]["backdoor_asr"], "wall_s": retrain["wall_s"]},
        "rows": rows_of(m.results, walls),
    }  # fmt: skip


def _ci(entry: dict[str, Any] | None, fmt: str = "+.1f", inf: bool = False) -> str:
    if inf:
        return "∞"
    if entry is None:
        return "-"
    half = "" if entry["ci95"] is None else f" ± {entry['ci95']:{fmt.lstrip('+')}}"
    return f"{entry['mean']:{fmt}}{half}"


def table(setting: dict[str, Any]) -> list[str]:
    """One setting over its seeds: per method, mean ± 95% half-interval of each figure, and the decision."""
    runs = setting["runs"]
    retrain = [r["retrain"] for r in runs]
    before = [r["before"] for r in runs]
    lines = [
        f"### {setting['label']} ({len(runs)} seeds: {', '.join(str(r['seed']) for r in runs)})",
        "",
        f"`{' '.join(setting['overrides'])}`; before unlearning: acc "
        f"{_ci(_mean(b['test_accuracy'] for b in before), '.3f')}, ASR "
        f"{_ci(_mean(b['backdoor_asr'] for b in before), '.3f')}; retrain: acc "
        f"{_ci(_mean(r['test_accuracy'] for r in retrain), '.3f')}, ASR "
        f"{_ci(_mean(r['backdoor_asr'] for r in retrain), '.3f')}, "
        f"{_ci(_mean(r['wall_s'] for r in retrain), '.1f')} s.",
        "",
        "| method | speed-up epochs | speed-up compute | speed-up wall | wall / compute | acc gap (pts) | "
        "ASR gap (pts) | z vs retrain | target (interval's worse end) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    round_ms = statistics.fmean(r["training"]["round_ms"] for r in runs)
    bound = round_ms >= 10 * FIXED_ROUND_MS  # a round's compute dwarfs Flower's fixed cost: wall can track work
    for row in setting["methods"]:
        verdict = "**pass**" if row["passes"] else "misses " + ", ".join(row["misses"])
        ratio = _ci(row["wall_over_compute"], ".2f") + ("" if bound else " (Flower-bound)")
        lines.append(
            f"| {row['method']} | {_ci(row['speedup_epochs'], '.1f', row['infinite_epochs'])} | "
            f"{_ci(row['speedup_compute'], '.1f', row['infinite_compute'])} | {_ci(row['speedup_wall'], '.1f')} | "
            f"{ratio} | {_ci(row['accuracy_gap'])} | {_ci(row['asr_gap'])} | {_ci(row.get('retrain_z'), '+.2f')} | "
            f"{verdict} |"
        )
    note = (f"A training round takes {round_ms:.0f} ms: "
            + ("≥ 10× Flower's fixed cost of a round, so wall / compute is judged (≥ 0.9)." if bound else
               f"< 10× Flower's fixed cost of a round ({FIXED_ROUND_MS:.0f} ms): wall / compute is bounded by Flower "
               "here and not judged."))  # fmt: skip
    return [*lines, "", note, ""]


def _mean(values: Any) -> dict[str, Any] | None:
    v = interval(list(values))
    return None if v is None else {"mean": v.mean, "ci95": v.ci95}


def length_plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({row["method"] for r in results for row in r["rows"]} - {"retrain"})
    lengths = [r["rounds"] for r in results]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, m in enumerate(methods):
        by = [next(row for row in r["rows"] if row["method"] == m) for r in results]
        speed = [min(b["speedup_epochs"], 1e3) for b in by]
        style = {"marker": "os^"[i // 10], "ls": ["-", "--", ":"][i // 10], "label": m}  # tab10 repeats after ten
        axes[0].plot(lengths, speed, **style)
        axes[1].plot(lengths, [b["accuracy_gap"] for b in by], **style)
        axes[2].plot(lengths, [b["asr_gap"] for b in by], **style)
    for ax, label in zip(axes, ("speed-up over retrain, client-epochs (∞ drawn at 1000)", "test accuracy gap (pts)",
                                "backdoor ASR gap (pts)"), strict=True):  # fmt: skip
        ax.set_xlabel("training rounds")
        ax.set_ylabel(label, fontsize=8)
        ax.set_xscale("log")
    axes[0].set_yscale("log")
    axes[0].axhline(10, color="tab:green", ls="--", lw=0.8)
    axes[1].axhline(1, color="tab:green", ls="--", lw=0.8)
    axes[2].axhline(2, color="tab:green", ls="--", lw=0.8)
    axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(held: list[dict[str, Any]], sweep: list[dict[str, Any]], rounds: int, name: str = "frontier") -> str:
    """The tables so far, written to benchmarks/out/frontier.{json,md} (after every run: a long run that is stopped
    still leaves what it measured)."""
    methods = sorted({row["method"] for h in held for row in h["methods"]})
    passing = [m for m in methods if all(next(r for r in h["methods"] if r["method"] == m)["passes"] for h in held)]
    lines = [
        f"Machine: {machine()}. Every method with its default parameters, {rounds} training rounds unless the setting "
        "says otherwise; mean ± 95% t-interval half-width over the seeds (sample std); a pass needs the interval's "
        "worse end within the target.",
        "",
    ]
    for h in held:
        lines += table(h)
    lines += ["Pass/fail per method and setting (over its seeds):", "",
              "| method | " + " | ".join(h["label"] for h in held) + " |", "|---|" + "---|" * len(held)]  # fmt: skip
    for m in methods:
        cells = ["pass" if next(r for r in h["methods"] if r["method"] == m)["passes"] else "–" for h in held]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if sweep:
        lines += ["", "Against the length of training (benchmark setting, one seed): speed-up in client-epochs / "
                  "accuracy gap / ASR gap", "", "| method | " + " | ".join(f"{s['rounds']} rounds" for s in sweep)
                  + " |", "|---|" + "---|" * len(sweep)]  # fmt: skip
        for m in methods:
            cells = []
            for s in sweep:
                row = next(r for r in s["rows"] if r["method"] == m)
                cells.append(f"{row['speedup_epochs']:.1f}× / {row['accuracy_gap']:+.1f} / {row['asr_gap']:+.1f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        OUT.mkdir(parents=True, exist_ok=True)
        length_plot(sweep, OUT / "frontier-length.png")
    lines += ["", f"Methods that pass on every setting: {', '.join(passing) or 'none'}."]
    text = "\n".join(lines)
    write_outputs(OUT, name, {"machine": machine(), "rounds": rounds, "target": TARGET, "settings": held,
                                    "length_sweep": sweep, "passing_everywhere": passing}, text)  # fmt: skip
    return text


def _seeded(overrides: list[str], replicate: int) -> list[str]:
    """The setting's overrides with its seed moved on by ``replicate`` (its own seed, default 0, for the first)."""
    base = next((int(o.split("=", 1)[1]) for o in overrides if o.startswith("seed=")), 0)
    return [*(o for o in overrides if not o.startswith("seed=")), f"seed={base + replicate}"]


def main() -> None:
    args = sys.argv[1:]
    quick = "--quick" in args
    chosen, seeds = None, 3
    if "--settings" in args:
        at = args.index("--settings")
        chosen = [int(i) for i in args[at + 1].split(",")]
        del args[at : at + 2]
    if "--seeds" in args:
        at = args.index("--seeds")
        seeds = int(args[at + 1])
        del args[at : at + 2]
    extra = [a for a in args if a != "--quick"]
    rounds = 50 if quick else ROUNDS
    settings = dict(list(SETTINGS.items())[:2]) if quick else SETTINGS
    if chosen is not None:
        settings = {label: o for i, (label, o) in enumerate(SETTINGS.items()) if i in chosen}
    lengths = () if quick or chosen is not None else LENGTHS
    name = "frontier" if chosen is None else "frontier-rerun"
    held: list[dict[str, Any]] = []
    sweep: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, o in settings.items():
            base = [f"fl.num_rounds={rounds}", *o, *extra]  # a setting's own fl.num_rounds comes later and wins
            entry: dict[str, Any] = {"label": label, "overrides": o, "runs": [], "methods": []}
            held.append(entry)
            for r in range(seeds):
                seeded = _seeded(base, r)
                run = measure(f"{label}, {seeded[-1]}", seeded, Path(tmp))
                entry["runs"].append({**run, "seed": int(seeded[-1].split("=")[1])})
                entry["methods"] = over_seeds(entry["runs"])
                report(held, sweep, rounds, name)
        for n in lengths:
            result = measure(f"benchmark, {n} rounds", [*BENCHMARK, f"fl.num_rounds={n}", *extra], Path(tmp))
            sweep.append({**result, "rounds": n})
            report(held, sweep, rounds, name)
    print(report(held, sweep, rounds, name))


if __name__ == "__main__":
    main()
