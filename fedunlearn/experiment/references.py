"""Reference federations for calibrated membership inference (``evaluation.references`` = K): K trained with the
forgotten clients ("in") and K without them ("out") — the run's data, partitions, backdoor and participation
schedule, each with a training seed of its own (the model's initialisation and every client's SGD order) — so that
the forgotten samples are members of the in-models and not of the out-models, as LiRA needs. The out-models are K
more retrains, which is what the retrain z measures a method against.

Models are cached in ``evaluation.references_cache`` by what decides them (data, model, training, forgotten clients,
seed and index), so the methods of a run, a rerun and a multirun's jobs over methods share them; the cost of those
trained here is reported apart from the methods' (results.json ``references``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedunlearn.config import Config
from fedunlearn.core.fedavg import no_curve, replay_rounds
from fedunlearn.core.federation import ClientTrainer, Cost, CostMeter
from fedunlearn.core.params import get_params
from fedunlearn.core.task import TrainPlan
from fedunlearn.evaluation import Evaluator
from fedunlearn.experiment.checkpoint import load_params, save_params
from fedunlearn.experiment.schedule import training_schedule
from fedunlearn.models import build_model
from fedunlearn.results import Compute, encode
from fedunlearn.seeds import Stream, client_seed

log = logging.getLogger("fedunlearn")


@dataclass(frozen=True)
class ReferencesReport:
    """What results.json says of the references: how many, their training seeds, what training them here cost."""

    k: int
    seeds: list[int]
    trained: int  # models trained in this run (the others came from the cache)
    cached: int
    wall_s: float
    cost: Cost


def setting_key(cfg: Config, forget: list[int]) -> str:
    """What decides a reference model besides its index: the data, the model, training, the forgotten clients."""
    decides: dict[str, Any] = {k: asdict(getattr(cfg, k)) for k in ("dataset", "partition", "backdoor", "model", "fl")}
    decides.update(seed=cfg.seed, forget=sorted(forget))
    return hashlib.sha256(json.dumps(decides, sort_keys=True, default=str).encode()).hexdigest()[:20]


def cache_dir(cfg: Config, forget: list[int]) -> Path:
    """Where the setting's reference models are cached."""
    return Path(cfg.evaluation.references_cache).expanduser() / setting_key(cfg, forget)


def reference_path(cache: Path, kind: str, j: int) -> Path:
    """The ``j``-th ``kind`` ("in" or "out") reference model in ``cache``."""
    return cache / f"{kind}-{j}.safetensors"


def train_references(
    cfg: Config, trainer: ClientTrainer, forget: list[int], evaluator: Evaluator, input_shape: tuple[int, ...],
    num_classes: int,
) -> ReferencesReport:  # fmt: skip
    """Train (or read from the cache) the K in- and K out-references, fit the evaluator's LiRA on them."""
    k = cfg.evaluation.references
    cache = cache_dir(cfg, forget)
    schedule = training_schedule(cfg)
    gone = set(forget)
    meter, plan, t0 = CostMeter(trainer), TrainPlan.from_config(cfg), time.perf_counter()
    seeds = [client_seed(cfg.seed, Stream.REFERENCE, 0, j) % 2**31 for j in range(k)]
    phis: dict[str, list[np.ndarray]] = {"in": [], "out": []}
    trained = 0
    for j, seed in enumerate(seeds):
        for kind in ("in", "out"):
            path = reference_path(cache, kind, j)
            if path.exists():
                params = load_params(path)
            else:
                rounds = schedule if kind == "in" else [(t, [c for c in cids if c not in gone]) for t, cids in schedule]
                start = get_params(build_model(cfg.model, input_shape, num_classes, seed))
                params, _ = replay_rounds(meter, start, rounds, plan, seed, no_curve, f"reference-{kind}-{j + 1}")
                save_params(path, params)
                trained += 1
            phis[kind].append(evaluator.phi(params))
    evaluator.use_references(np.stack(phis["in"]), np.stack(phis["out"]))
    report = ReferencesReport(k, seeds, trained, 2 * k - trained, time.perf_counter() - t0, meter.cost)
    log.info("references: %d in + %d out models (%d trained here, %d from %s)", k, k, trained, 2 * k - trained, cache)
    return report


def fit_cached(cfg: Config, forget: list[int], evaluator: Evaluator) -> list[Path]:
    """Fit the evaluator's LiRA on the run's reference models from the cache alone (``fedunlearn-verify
    --recompute``: nothing is trained); the files missing from the cache, none when it fitted."""
    cache = cache_dir(cfg, forget)
    paths = {kind: [reference_path(cache, kind, j) for j in range(cfg.evaluation.references)] for kind in ("in", "out")}
    missing = [path for kind in paths.values() for path in kind if not path.exists()]
    if not missing:
        phis = {kind: np.stack([evaluator.phi(load_params(path)) for path in kind_paths])
                for kind, kind_paths in paths.items()}  # fmt: skip
        evaluator.use_references(phis["in"], phis["out"])
    return missing


def report_to_json(r: ReferencesReport) -> dict[str, Any]:
    return {"k": r.k, "seeds": r.seeds, "trained": r.trained, "cached": r.cached, "wall_s": r.wall_s,
            "client_epochs": r.cost.client_epochs, "compute": encode(Compute.of(r.cost))}  # fmt: skip
