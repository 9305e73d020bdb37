"""Who trains in which round of a run: a pure function of the config (its seed, ``fl.*`` and the departures of
``forget.schedule``), so retraining, references and the checks before Ray starts all see the same rounds."""

from __future__ import annotations

from fedunlearn.config import Config
from fedunlearn.core.fedavg import sample_clients
from fedunlearn.core.task import drops_out
from fedunlearn.seeds import Stream, client_seed, rng


def training_schedule(cfg: Config) -> list[tuple[int, list[int]]]:
    """Each training round's sampled client ids (a pure function of the config). Clients that left through
    ``forget.schedule`` are no longer sampled after their request's round."""
    generator = rng(cfg.seed, Stream.SAMPLING)
    gone_after = {c: r.round for r in cfg.forget.schedule for c in r.clients}
    schedule = []
    for t in range(1, cfg.fl.num_rounds + 1):
        pool = [c for c in range(cfg.fl.num_clients) if gone_after.get(c, t) >= t]
        schedule.append((t, sample_clients(pool, cfg.fl.fraction_train, generator)))
    return schedule


def first_training_rounds(cfg: Config) -> dict[int, int]:
    """Client id → the first round in which it trains (sampled and not dropped out, both seeded, so known at
    start); clients that never train are absent."""
    first: dict[int, int] = {}
    for t, cids in training_schedule(cfg):
        for c in cids:
            if c not in first and not drops_out(client_seed(cfg.seed, Stream.TRAINING, t, c), cfg.fl.dropout_rate):
                first[c] = t
    return first
