"""What compressing the stored history does to unlearning: every history-based method on a history stored with each
codec (``history.codec``), against the same method on the float32 history of the same seed.

    python benchmarks/history_codecs.py                        # the frontier's benchmark and a Fashion-MNIST setting
    python benchmarks/history_codecs.py --settings digits+mlp --rounds 50   # a cheap setting (minutes)

Training aggregates the clients' exact updates whatever the codec (only what is *stored* changes), so each seed's
runs share one trained model and retrain; the differences are the codec's alone. Per codec: history bytes (ratio
to float32), the time to encode and write a round and to read it back (measured on the float32 run's own updates,
median over rounds), and per method the change in test accuracy, backdoor ASR (points) and L2 distance to retrain
against float32: mean and 95% t-interval over seeds. Target: a codec ≥ 8× smaller than float32 changing accuracy
by ≤ 0.5 and ASR by ≤ 1 point for every history method (judged on the interval's ends).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import machine, run_fedunlearn, write_outputs
from frontier import BENCHMARK, SETTINGS

from fedunlearn.history import HistoryStore
from fedunlearn.history.codecs import Codec
from fedunlearn.reporting.stats import interval

METHODS = ["retrain", "federaser", "fedaccum", "fedrecover", "crab", "sifu", "kd", "kd_recover", "rollback"]
CODECS = {
    "float32": ["history.codec=none"],
    "float16": ["history.codec=none", "history.dtype=float16"],
    "int8": ["history.codec=int8"],
    "topk": ["history.codec=topk"],
}
CHOICES = {
    "benchmark": BENCHMARK,
    "fashion_mnist+cnn, 20 clients, two forgotten": SETTINGS["fashion_mnist+cnn, 20 clients, two forgotten"],
    "digits+mlp": ["fl.num_clients=20", "backdoor.clients=[0]", "forget.clients=[0]"],
}
DEFAULT_SETTINGS = ["benchmark", "fashion_mnist+cnn, 20 clients, two forgotten"]
TARGET = {"ratio": 8.0, "accuracy_pts": 0.5, "asr_pts": 1.0}


def codec_timing(history: Path, codecs: dict[str, Codec | None]) -> dict[str, dict[str, float]]:
    """Median ms to encode and write one stored round, and to read its updates back, per codec (on ``history``'s
    own float32 updates, rewritten into a scratch store)."""
    source = HistoryStore.open(history)
    rounds = source.rounds_stored()
    timing: dict[str, dict[str, float]] = {}
    for name, codec in codecs.items():
        scratch = Path(tempfile.mkdtemp(prefix="fu-codec-"))
        dtype = "float16" if name == "float16" else "float32"
        store = HistoryStore(scratch, source.interval, dtype, codec=codec)
        writes, reads = [], []
        for t in rounds:
            clients = source.participants(t)
            ups = {c: source.client_update(t, c) for c in clients}
            t0 = time.perf_counter()
            store.record_round(t, source.global_model(t), ups, {c: source.num_examples(t, c) for c in clients})
            writes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for c in clients:
                store.client_update(t, c)
            reads.append(time.perf_counter() - t0)
        timing[name] = {"write_ms": 1e3 * statistics.median(writes), "read_ms": 1e3 * statistics.median(reads)}
        shutil.rmtree(scratch, ignore_errors=True)
    return timing


def metrics_of(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method's test accuracy, backdoor ASR and L2 distance to retrain."""
    keys = ("test_accuracy", "backdoor_asr", "l2_to_retrain")
    return {m: {k: results["unlearning"][m]["metrics"].get(k) for k in keys} for m in METHODS}


def differences(per: dict[str, dict[int, dict[str, Any]]], codec: str, method: str, key: str, scale: float,
                seeds: list[int]) -> list[float]:  # fmt: skip
    """``scale`` × (the codec's value − float32's) of ``key`` for ``method``, one per seed."""
    return [scale * (per[codec][s][method][key] - per["float32"][s][method][key]) for s in seeds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=DEFAULT_SETTINGS, choices=sorted(CHOICES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--codecs", nargs="+", default=list(CODECS), choices=list(CODECS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--name", default="history_codecs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fu-codecs-"))
    runs: list[dict[str, Any]] = []
    lines = [f"# History codecs ({time.strftime('%Y-%m-%d')}, {machine()})", "",
             f"`python benchmarks/history_codecs.py --settings {' '.join(repr(s) for s in args.settings)} "
             f"--rounds {args.rounds} --seeds {' '.join(map(str, args.seeds))}`; differences to float32 of the same "
             "seed, mean ± 95% t-interval over seeds; points for accuracy and ASR.", ""]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    progress = args.out / f"{args.name}-runs.jsonl"  # each run as it finishes (a cut-short session keeps them)
    progress.write_text("")
    for setting in args.settings:
        per: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in args.codecs}
        timing: dict[str, dict[str, float]] = {}
        for seed in args.seeds:
            for codec in args.codecs:
                overrides = [*CHOICES[setting], f"fl.num_rounds={args.rounds}", f"seed={seed}", "ray.num_cpus=2",
                             f"unlearning.methods=[{','.join(METHODS)}]", *CODECS[codec]]  # fmt: skip
                run_dir = work / f"{len(runs)}"
                print(f"[{setting}] seed {seed} {codec} ...", flush=True)
                measured = run_fedunlearn(run_dir, overrides)
                res = measured.results
                per[codec][seed] = {**metrics_of(res), "history": res["history"]}
                runs.append({"setting": setting, "seed": seed, "codec": codec, **per[codec][seed]})
                with open(progress, "a") as fh:
                    fh.write(json.dumps(runs[-1]) + "\n")
                if codec == "float32" and not timing:
                    timing = codec_timing(
                        run_dir / "history",
                        {c: None if c in ("float32", "float16") else Codec(c) for c in args.codecs},
                    )
                shutil.rmtree(run_dir, ignore_errors=True)
        lines += [f"## {setting} ({args.rounds} rounds, seeds {args.seeds})", ""]
        lines += ["| codec | history MB | × smaller | write ms/round | read ms/round |", "|---|---:|---:|---:|---:|"]
        base_mb = statistics.fmean(per["float32"][s]["history"]["bytes"] / 1e6 for s in args.seeds)
        for codec in args.codecs:
            mb = statistics.fmean(per[codec][s]["history"]["bytes"] / 1e6 for s in args.seeds)
            t = timing.get(codec, {})
            lines.append(f"| {codec} | {mb:.2f} | {base_mb / mb:.1f} | {t.get('write_ms', float('nan')):.1f} | "
                         f"{t.get('read_ms', float('nan')):.1f} |")  # fmt: skip
        lines += ["", "| method | codec | Δ accuracy (pts) | Δ ASR (pts) | Δ L2 to retrain | within target |",
                  "|---|---|---:|---:|---:|---|"]  # fmt: skip
        for m in METHODS[1:]:
            for codec in args.codecs:
                if codec == "float32":
                    continue
                scaled = (("test_accuracy", 100.0), ("backdoor_asr", 100.0), ("l2_to_retrain", 1.0))
                ia, ib, il = (interval(differences(per, codec, m, key, f, args.seeds)) for key, f in scaled)
                ok = all(
                    ci is not None and ci.ci95 is not None and max(abs(ci.low), abs(ci.high)) <= tol
                    for ci, tol in ((ia, TARGET["accuracy_pts"]), (ib, TARGET["asr_pts"]))
                )
                lines.append(f"| {m} | {codec} | {ia.text(2) if ia else '-'} | {ib.text(2) if ib else '-'} | "
                             f"{il.text(3) if il else '-'} | {'yes' if ok else 'no'} |")  # fmt: skip
        lines.append("")
    table = "\n".join(lines)
    print(table)
    write_outputs(args.out, args.name, {"machine": machine(), "runs": runs}, table)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
