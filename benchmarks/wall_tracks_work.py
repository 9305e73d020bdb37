"""Does wall time track work? For every history-based method that asks clients to train: its wall speed-up over
retrain against its speed-up in client-epochs, with a round's clients sent as packs (``ray.pack_clients=true``,
the default) and as one message per client (``false``), on the same trained model.

    python benchmarks/wall_tracks_work.py                               # settings C (100 rounds), A and E (50)
    python benchmarks/wall_tracks_work.py --settings 2 --rounds 100     # one setting (index into frontier.SETTINGS)
    python benchmarks/wall_tracks_work.py --packs-only                  # the default mode only (half the time)
    python benchmarks/wall_tracks_work.py --override ray.packs_per_actor=1   # an override for every run (repeatable)

About 45 minutes on 2 cores. The cnn settings train 50 rounds: the ratio is per step and round, and 100 would double
a run that repeats every method six times.

Target: wall speed-up ≥ 0.9 × the speed-up in client-epochs. Each pack mode runs every method
three times on the same trained model (the run's resume with their stages dropped) and retrain with them; each
wall is the median of the three, with the ratio's spread over the three repetitions (repetition i's method wall
against repetition i's retrain). Methods that ask no client to train (fedaccum, fedrecovery, kd) have no
epoch speed-up to track and are left out. Writes benchmarks/out/wall_tracks_work.{json,md}.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _measure import machine, run_again, run_fedunlearn, write_outputs
from frontier import SETTINGS

OUT = Path(__file__).parent / "out"
METHODS = ["retrain", "federaser", "fedrecover", "crab", "sifu", "rollback", "kd_recover"]
RATIO = 0.9
REPEATS = 3


def measure(label: str, overrides: list[str], tmp: Path, modes: tuple[str, ...]) -> dict[str, Any]:
    """The pack modes on one trained model: rows of (method, mode) with epoch and wall speed-ups."""
    run_dir = tmp / "run"
    print(f"[{label}] {' '.join(overrides)}", flush=True)
    base = [*overrides, f"unlearning.methods=[{','.join(METHODS)}]", "ray.num_cpus=2"]
    first = run_fedunlearn(run_dir, base).results
    rows = []
    for mode in modes:
        reps = [first["unlearning"]] if mode == "true" else []
        while len(reps) < REPEATS:
            copy = tmp / f"again-{mode}-{len(reps)}"
            reps.append(run_again(run_dir, copy, [*base, f"ray.pack_clients={mode}"], METHODS))
        for m in METHODS[1:]:
            walls = [r[m]["wall_s"] for r in reps]
            retrain = [r["retrain"]["wall_s"] for r in reps]
            epochs = reps[0]["retrain"]["client_epochs"] / reps[0][m]["client_epochs"]
            wall = statistics.median(retrain) / statistics.median(walls)
            each = [rt / w / epochs for rt, w in zip(retrain, walls, strict=True)]
            # work that client-epochs do not count: the server's distillation, the stop rule's federated evaluations
            other = [r[m]["info"].get("distill_s", 0.0) + r[m]["info"].get("federated_evaluation_s", 0.0) for r in reps]
            training = statistics.median([w - o for w, o in zip(walls, other, strict=True)])
            rows.append({"method": m, "packs": mode == "true", "speedup_epochs": epochs, "speedup_wall": wall,
                         "ratio": wall / epochs, "ratio_spread": [min(each), max(each)], "walls": walls,
                         "retrain_walls": retrain, "meets": wall / epochs >= RATIO, "uncounted_walls": other,
                         "ratio_training": statistics.median(retrain) / training / epochs,
                         "info": reps[0][m]["info"]})  # fmt: skip
    shutil.rmtree(run_dir)
    return {"label": label, "overrides": overrides, "training_wall_s": first["training"]["wall_s"], "rows": rows}


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine: {machine()}. Wall speed-up = median retrain wall / median method wall "
        f"over {REPEATS} repetitions; ratio = wall speed-up / epoch speed-up (target ≥ {RATIO}); where a method "
        "does work that client-epochs do not count (kd_recover's distillation on the server, a stop rule's federated "
        "evaluations), also the ratio of its wall without that work.",
        "",
    ]
    for r in results:
        modes = [True] + ([False] if any(not x["packs"] for x in r["rows"]) else [])
        head = "| method | epochs | wall, packs | ratio, packs (spread) |"
        rule = "|---|---:|---:|---:|"
        if False in modes:
            head += " wall, a message per client | ratio, a message per client (spread) |"
            rule += "---:|---:|"
        lines += [f"### {r['label']}", "", f"`{' '.join(r['overrides'])}`", "", head, rule]
        for m in METHODS[1:]:
            line = f"| {m} |"
            for packs in modes:
                x = next(x for x in r["rows"] if x["method"] == m and x["packs"] == packs)
                if packs:
                    line += f" {x['speedup_epochs']:.2f}× |"
                uncounted = max(x["uncounted_walls"]) > 0
                extra = f"; without uncounted work {x['ratio_training']:.2f}" if uncounted else ""
                line += (
                    f" {x['speedup_wall']:.2f}× | {x['ratio']:.2f} ({x['ratio_spread'][0]:.2f}–"
                    f"{x['ratio_spread'][1]:.2f}){' ✓' if x['meets'] else ''}{extra} |"
                )
            lines.append(line)
        lines.append("")
    meets = [m for m in METHODS[1:] if all(next(x for x in r["rows"] if x["method"] == m and x["packs"])["meets"]
                                          for r in results)]  # fmt: skip
    lines.append(f"Methods whose wall tracks their work (ratio ≥ {RATIO}, packs) on every setting: "
                 f"{', '.join(meets) or 'none'}.")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    chosen, rounds = [2, 0, 4], [100, 50, 50]
    if "--settings" in args:
        chosen = [int(i) for i in args[args.index("--settings") + 1].split(",")]
    if "--rounds" in args:
        rounds = [int(n) for n in args[args.index("--rounds") + 1].split(",")]
    rounds = (rounds * len(chosen))[: len(chosen)] if len(rounds) == 1 else rounds
    modes = ("true",) if "--packs-only" in args else ("true", "false")
    extra = [args[i + 1] for i, a in enumerate(args) if a == "--override"]
    labels = list(SETTINGS)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, n in zip(chosen, rounds, strict=True):
            overrides = [*SETTINGS[labels[i]], f"fl.num_rounds={n}", *extra]
            results.append(measure(labels[i], overrides, Path(tmp), modes))
            text = table(results)
            write_outputs(OUT, "wall_tracks_work", {"machine": machine(), "settings": results}, text)
    print(text)


if __name__ == "__main__":
    main()
