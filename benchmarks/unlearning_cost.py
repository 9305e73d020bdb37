"""Every registered method against retraining where client compute dominates: a cnn on image-shaped synthetic
data, 20 clients, 20 rounds, client 0 backdoored and forgotten. One run, so all methods share the trained model,
the history and the machine's state.

    python benchmarks/unlearning_cost.py                    # the setting below
    python benchmarks/unlearning_cost.py seed=1 fl.local_epochs=4   # extra arguments are Hydra overrides

Prints each method's wall seconds, client-epochs, speed-ups vs retrain, and its test-accuracy and ASR gaps to
retrain; then checks the targets (best method ≥ 10× fewer client-epochs and ≥ 5× less wall time than retrain
within 1 point of its accuracy and 2 points of its ASR; FedEraser ≥ 3.5× fewer client-epochs).
Writes benchmarks/out/unlearning_cost.json and .md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from _measure import machine, run_fedunlearn, write_outputs

OUT = Path(__file__).parent / "out"
SETTING = [
    "dataset=synthetic",
    "dataset.shape=[1,16,16]",
    "dataset.num_samples=8000",
    "dataset.class_sep=1.2",
    "model=cnn",
    "fl.num_clients=20",
    "fl.num_rounds=20",
    "fl.local_epochs=2",
    "fl.lr=0.05",
    "fl.batch_size=32",
    "backdoor.clients=[0]",
    "forget.clients=[0]",
    "unlearning.methods=all",
    "ray.num_cpus=2",
]


def rows_of(results: dict[str, Any]) -> list[dict[str, Any]]:
    retrain = results["unlearning"]["retrain"]
    rows = []
    for name, e in results["unlearning"].items():
        speed = e["speedup_vs_retrain"] or {}
        m, r = e["metrics"], retrain["metrics"]
        rows.append(
            {
                "method": name,
                "wall_s": e["wall_s"],
                "client_epochs": e["client_epochs"],
                "speedup_epochs": speed.get("client_epochs"),  # None: the method trains no client (infinite)
                "speedup_wall": speed.get("wall"),
                "test_accuracy": m["test_accuracy"],
                "backdoor_asr": m["backdoor_asr"],
                "accuracy_gap_points": 100 * (r["test_accuracy"] - m["test_accuracy"]),
                "asr_gap_points": 100 * (m["backdoor_asr"] - r["backdoor_asr"]),
                "info": e["info"],
                "recovery_rounds": [
                    {k: x[k] for k in ("round", "test_accuracy", "test_loss")} for x in e["recovery_rounds"]
                ],
            }
        )
    return rows


def misses(row: dict[str, Any]) -> list[str]:
    """The best-method criteria ``row`` misses, each with its measured value (empty: it meets the target)."""
    out = []
    if row["speedup_epochs"] is not None and row["speedup_epochs"] < 10:
        out.append(f"client-epochs {row['speedup_epochs']:.2f}× < 10×")
    if (row["speedup_wall"] or 0) < 5:
        out.append(f"wall {row['speedup_wall'] or 0:.2f}× < 5×")
    if row["accuracy_gap_points"] > 1:
        out.append(f"accuracy {row['accuracy_gap_points']:.1f} pts below retrain > 1")
    if row["asr_gap_points"] > 2:
        out.append(f"ASR {row['asr_gap_points']:.1f} pts above retrain > 2")
    return out


def meets(row: dict[str, Any]) -> bool:
    return not misses(row)


def main() -> None:
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        m = run_fedunlearn(Path(tmp) / "run", [*SETTING, *extra])
    results = m.results
    rows = rows_of(results)
    before = results["before_unlearning"]["metrics"]
    train = results["training"]
    lines = [
        f"Machine: {machine()}. {' '.join(SETTING + extra)}",
        "",
        f"Training: {train['wall_s']:.1f} s, {train['client_epochs']} client-epochs; before unlearning: test acc "
        f"{before['test_accuracy']:.3f}, backdoor ASR {before['backdoor_asr']:.3f}.",
        "",
        "| method | wall s | client-epochs | speed-up epochs | speed-up wall | test acc | ASR | acc gap (pts) "
        "| ASR gap (pts) | meets the best-method target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        epochs = "∞" if r["speedup_epochs"] is None else f"{r['speedup_epochs']:.2f}"
        lines.append(
            f"| {r['method']} | {r['wall_s']:.1f} | {r['client_epochs']} | {epochs} | {r['speedup_wall']:.2f} "
            f"| {r['test_accuracy']:.3f} | {r['backdoor_asr']:.3f} | {r['accuracy_gap_points']:+.1f} "
            f"| {r['asr_gap_points']:+.1f} | {'yes' if meets(r) and r['method'] != 'retrain' else ''} |"
        )
    best = [r["method"] for r in rows if r["method"] != "retrain" and meets(r)]
    lines += ["", "What each approximate method misses of the best-method target:", ""]
    for r in rows:
        if r["method"] not in ("retrain", "rollback"):
            lines.append(f"- {r['method']}: {'; '.join(misses(r)) or 'nothing (meets it)'}")
    pga = next((r for r in rows if r["method"] == "pga"), None)
    if pga is not None:
        path = " → ".join(f"{x['test_accuracy']:.3f}/{x['test_loss']:.2f}" for x in pga["recovery_rounds"])
        lines.append(
            f"- PGA's path (test acc/loss after each ascent epoch, then each post round; "
            f"{pga['info'].get('ascent_steps')} ascent steps, stopped early: {pga['info'].get('stopped_early')}): "
            f"{path}"
        )
    federaser = next(r for r in rows if r["method"] == "federaser")
    lines += [
        "",
        f"Best-method target (≥10× epochs, ≥5× wall, ≤1 pt acc, ≤2 pts ASR): "
        f"{'met by ' + ', '.join(best) if best else 'not met'}.",
        f"FedEraser target (≥3.5× fewer client-epochs): {federaser['speedup_epochs']:.2f}× — "
        f"{'met' if (federaser['speedup_epochs'] or 0) >= 3.5 else 'not met'}.",
    ]
    table = "\n".join(lines)
    print(table)
    write_outputs(OUT, "unlearning_cost", {"machine": machine(), "setting": SETTING + extra, "rows": rows}, table)


if __name__ == "__main__":
    main()
