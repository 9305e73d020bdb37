"""History storage: bytes the HistoryStore writes per round against the analytic formula, float32 vs float16,
history.interval 1/2/5, and what each unlearning method needs of it.

    python benchmarks/storage.py                       # the default model (mlp on digits), 10 clients, 20 rounds
    python benchmarks/storage.py model=cnn fl.num_clients=20   # extra arguments are Hydra overrides

The store is written exactly as in a run (safetensors files through ``HistoryStore.record_round``) with random
parameters of the configured model's shapes; no training is needed to measure bytes. Formula:
rounds_stored × (clients + 1) × parameters × bytes-per-value, plus each file's safetensors header.
Writes benchmarks/out/storage.json and .md.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _measure import machine, write_outputs

from fedunlearn.app.compose import compose_config
from fedunlearn.core.params import get_params
from fedunlearn.data import federated_data
from fedunlearn.history import HistoryStore
from fedunlearn.models import build_model

OUT = Path(__file__).parent / "out"
INTERVALS = (1, 2, 5)
DTYPES = {"float32": 4, "float16": 2}


def method_needs(rounds: int, clients: int, interval: int) -> dict[str, tuple[float, str]]:
    """Model-sized tensors each method reads (in units of parameters × bytes), and which."""
    stored = math.ceil(rounds / interval)
    return {
        "retrain": (1, "M^1 (plus who took part in each round)"),
        "rollback": (stored, "M^t of the stored rounds (one of them, worst case all)"),
        "federaser / fedaccum (Δt = interval)": (stored * (clients + 1), "M^t and U_k^t every Δt rounds"),
        "fedrecover / fedrecovery / kd": (rounds * (clients + 1), "M^t and U_k^t of every round (interval 1)"),
        "pga": (clients + 1, "M^t and the others' U_k^t of the last round with the client"),
        "finetune": (0, "nothing"),
    }


def main() -> None:
    extra = sys.argv[1:]
    cfg = compose_config(["experiment=train_only", *extra])
    data = federated_data(cfg)
    params = get_params(build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed))
    num_params = sum(v.size for v in params.values())
    rounds, clients = cfg.fl.num_rounds, max(1, round(cfg.fl.fraction_train * cfg.fl.num_clients))
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype, width in DTYPES.items():
            for interval in INTERVALS:
                store = HistoryStore(Path(tmp) / f"{dtype}-{interval}", interval, dtype)
                for t in range(1, rounds + 1):
                    noise = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
                    store.record_round(t, noise, {c: noise for c in range(clients)}, dict.fromkeys(range(clients), 1))
                stored = len(store.rounds_stored())
                payload = stored * (clients + 1) * num_params * width
                files = stored * (clients + 1)
                rows.append(
                    {
                        "dtype": dtype,
                        "interval": interval,
                        "rounds_stored": stored,
                        "bytes": store.total_bytes(),
                        "bytes_per_round": store.total_bytes() / rounds,
                        "formula_payload_bytes": payload,
                        "header_bytes_per_file": (store.total_bytes() - payload) / files,
                        "measured_over_formula": store.total_bytes() / payload,
                    }
                )
    base = rows[0]["bytes"]
    lines = [
        f"Machine: {machine()}. Model {cfg.model.name} on {cfg.dataset.name}: {num_params} parameters; "
        f"{clients} clients per round, {rounds} rounds.",
        "",
        "| dtype | interval | rounds stored | MB | KB per round | formula MB | measured / formula | header B/file "
        "| vs float32, interval 1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dtype']} | {r['interval']} | {r['rounds_stored']} | {r['bytes'] / 1e6:.3f} "
            f"| {r['bytes_per_round'] / 1e3:.1f} | {r['formula_payload_bytes'] / 1e6:.3f} "
            f"| {r['measured_over_formula']:.4f} | {r['header_bytes_per_file']:.0f} | {r['bytes'] / base:.3f} |"
        )
    lines += ["", "What each method reads (float32; a model-sized tensor is "
              f"{num_params * 4 / 1e3:.1f} KB):", "", "| method | interval | tensors | MB | of what is stored |",
              "|---|---:|---:|---:|---:|"]  # fmt: skip
    needs: dict[str, Any] = {}
    for r in [r for r in rows if r["dtype"] == "float32"]:
        for method, (tensors, what) in method_needs(rounds, clients, r["interval"]).items():
            if method.startswith("fedrecover") and r["interval"] != 1:
                continue
            need = tensors * num_params * 4
            needs[f"{method} @ {r['interval']}"] = {"tensors": tensors, "bytes": need, "what": what}
            lines.append(
                f"| {method} | {r['interval']} | {tensors} | {need / 1e6:.3f} "
                f"| {need / r['formula_payload_bytes']:.1%} |"
            )
    table = "\n".join(lines)
    print(table)
    payload = {"machine": machine(), "num_parameters": num_params, "clients_per_round": clients,
               "rounds": rounds, "rows": rows, "method_needs": needs}  # fmt: skip
    write_outputs(OUT, "storage", payload, table)


if __name__ == "__main__":
    main()
