"""The history's on-disk layout at scale: one safetensors file per participating client per round plus the round's
global model, one hash-chain line per round, and one JSON manifest (checksums) written once at the end.

    python benchmarks/history_layout.py                  # 10,000 registered clients, 100 rounds, 10 and 100 per round

Records 100 rounds of the default mlp (4,810 parameters) exactly as a run does (HistoryStore behind the ordered
background writer, fsync per file), then measures: files, bytes, the manifest's size, the time to record the first
and the last round (flat when recording a round is O(its clients)), the one manifest write at the end (``sync``),
and the time to read one round's updates back (checksums verified; the
page cache is warm, as in a run that reads what it just wrote). Prints the table; writes
benchmarks/out/history_layout.{json,md}.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _measure import machine, write_outputs

from fedunlearn.history import HistoryStore
from fedunlearn.history.writer import BackgroundWriter, FileWriter

OUT = Path(__file__).parent / "out"
CLIENTS, ROUNDS = 10_000, 100
SHAPES = {"net.1.weight": (64, 64), "net.1.bias": (64,), "net.3.weight": (10, 64), "net.3.bias": (10,)}


class Discard(FileWriter):
    """Writes nothing: what remains of recording a round is the server's own work (encoding, hashing, the index)."""

    def write(self, path: Path, payload: bytes) -> None:
        pass

    def append(self, path: Path, payload: bytes) -> None:
        pass


def server_work(per_round: int, root: Path) -> tuple[float, float]:
    """Median ms of recording one of the first and one of the last 5 rounds with the writes discarded: flat when a
    round costs O(its clients), growing when anything is O(rounds so far)."""
    rng = np.random.default_rng(1)
    params = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    store, record_s = HistoryStore(root, writer=Discard()), []
    for t in range(1, ROUNDS + 1):
        cids = sorted(rng.choice(CLIENTS, per_round, replace=False).tolist())
        t0 = time.perf_counter()
        store.record_round(t, params, {c: params for c in cids}, {c: 40 for c in cids})
        record_s.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(record_s[:5]), 1e3 * statistics.median(record_s[-5:])


def measure(per_round: int, root: Path) -> dict[str, float]:
    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=s).astype(np.float32) for k, s in SHAPES.items()}
    record_s = []
    t_all = time.perf_counter()
    with BackgroundWriter() as writer:
        store = HistoryStore(root, writer=writer)
        for t in range(1, ROUNDS + 1):
            cids = sorted(rng.choice(CLIENTS, per_round, replace=False).tolist())
            t0 = time.perf_counter()
            store.record_round(t, params, {c: params for c in cids}, {c: 40 for c in cids})
            record_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.sync()
        sync_s = time.perf_counter() - t0
    write_s = time.perf_counter() - t_all
    reads = []
    for _ in range(5):
        t0 = time.perf_counter()
        for c in store.participants(ROUNDS // 2):
            store.client_update(ROUNDS // 2, c)
        reads.append(time.perf_counter() - t0)
    files = [p for p in root.rglob("*") if p.is_file()]
    with tempfile.TemporaryDirectory() as scratch:
        work_first, work_last = server_work(per_round, Path(scratch))
    return {
        "per_round": per_round,
        "files": len(files),
        "megabytes": sum(p.stat().st_size for p in files) / 1e6,
        "manifest_kb": store.manifest_path.stat().st_size / 1e3,
        "write_s": write_s,
        "record_first_ms": 1e3 * statistics.median(record_s[:5]),
        "record_last_ms": 1e3 * statistics.median(record_s[-5:]),
        "read_round_ms": 1e3 * statistics.median(reads),
        "sync_ms": 1e3 * sync_s,
        "work_first_ms": work_first,
        "work_last_ms": work_last,
    }


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100]
    rows = []
    for k in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(k, Path(tmp)))
            print(rows[-1], flush=True)
    lines = [
        f"Machine: {machine()}. {CLIENTS} registered clients, {ROUNDS} rounds, mlp (4,810 parameters), float32.",
        "",
        "| clients per round | files | MB | manifest KB | write s (all rounds, with fsync) | record round, first ms "
        "| record round, last ms | manifest at the end ms | read one round's updates ms "
        "| server work, first / last round ms (last/first) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['per_round']} | {r['files']} | {r['megabytes']:.1f} | {r['manifest_kb']:.0f} | {r['write_s']:.1f} "
            f"| {r['record_first_ms']:.1f} | {r['record_last_ms']:.1f} | {r['sync_ms']:.1f} | {r['read_round_ms']:.1f} "
            f"| {r['work_first_ms']:.1f} / {r['work_last_ms']:.1f} ({r['work_last_ms'] / r['work_first_ms']:.2f}) |"
        )
    table = "\n".join(lines)
    print(table)
    write_outputs(OUT, "history_layout", {"machine": machine(), "rows": rows}, table)


if __name__ == "__main__":
    main()
