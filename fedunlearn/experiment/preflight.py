"""Checks made on the driver before Ray or any client starts: what the config alone cannot tell.

The run directory (fresh, or a resumable run with the same config and an intact history), the data (built here,
so that anything that depends on it — classes, samples per client, input shape against the model — fails now
with the key to change), and whether every forgotten client trains before it leaves.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from fedunlearn.config import Config, ConfigError, TrackingConfig
from fedunlearn.data import federated_data
from fedunlearn.experiment.checkpoint import CheckpointError, RunCheckpoint
from fedunlearn.experiment.schedule import first_training_rounds
from fedunlearn.history.store import MANIFEST, HistoryCorruptError, HistoryStore
from fedunlearn.models import build_model


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → '0-2, 5, 7-8'."""
    parts: list[str] = []
    for cid in ids:
        if parts and parts[-1].split("-")[-1] == str(cid - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{cid}"
        else:
            parts.append(str(cid))
    return ", ".join(parts)


def check_forgotten_clients_train(cfg: Config) -> None:
    """Each forgotten client must contribute to some training round before it leaves (sampling and dropouts
    are seeded, so this is known at start)."""
    first = first_training_rounds(cfg)
    requests = [("forget.clients", cfg.fl.num_rounds, list(cfg.forget.clients))]
    requests += [(f"forget.schedule[{i}].clients", r.round, list(r.clients)) for i, r in enumerate(cfg.forget.schedule)]
    for key, until, clients in requests:
        trained = [c for c, t in first.items() if t <= until]
        never = [c for c in clients if c not in trained]
        if never:
            raise ConfigError(
                key,
                f"client(s) {never} never train in the {until} rounds before leaving (not sampled by "
                f"fl.fraction_train={cfg.fl.fraction_train} or dropped out); clients that train: "
                f"{_ranges(sorted(trained))}",
            )


def check_device(cfg: Config) -> None:
    """``evaluation.device=cuda`` needs a GPU the driver's torch can use."""
    if cfg.evaluation.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("evaluation.device", "cuda, but torch sees no GPU in this process; use evaluation.device=cpu")


def check_data(cfg: Config) -> None:
    """Build the federation's data (cached for the run) and pass one sample through the model."""
    data = federated_data(cfg)
    try:
        model = build_model(cfg.model, data.input_shape, data.num_classes, cfg.seed)
        with torch.no_grad():
            model(torch.from_numpy(data.train.x[:1]))
    except (ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            "model", f"model={cfg.model.name} does not fit inputs of shape {list(data.input_shape)}: {first}"
        ) from None


def check_run_dir(cfg: Config, run_dir: Path) -> None:
    """A fresh run needs a directory without a run; ``resume=true`` a run made with the same config and an
    intact history. Raises ConfigError, CheckpointError or HistoryCorruptError."""
    ckpt = RunCheckpoint(run_dir, cfg)
    history = run_dir / cfg.history.dir
    if not cfg.resume:
        if ckpt.exists() or (history / MANIFEST).exists():
            raise ConfigError(
                "resume", f"{run_dir} already holds a run; pass resume=true to continue it, or another hydra.run.dir"
            )
        return
    if not ckpt.exists():
        raise CheckpointError(
            f"resume=true, but {run_dir} holds no run to resume (no {ckpt.state_path.relative_to(run_dir)}); check "
            "hydra.run.dir, or drop resume=true to start a new run there"
        )
    ckpt.load()
    ckpt.verify()
    if ckpt.training() is not None and cfg.history.record:
        # The manifest lists a round only once all its files are written, so rounds past the checkpoint verify
        # too; the resumed run truncates them and records them again.
        try:
            HistoryStore.open(history).verify()
        except HistoryCorruptError as err:
            raise HistoryCorruptError(
                f"cannot resume: {err}; the history the run was recorded with is damaged: start it again in "
                "another hydra.run.dir"
            ) from None


def preflight(cfg: Config, run_dir: Path) -> None:
    """Every start-time check, in the order a user would fix them."""
    check_forgotten_clients_train(cfg)
    tracker_installed(cfg.tracking)
    check_run_dir(cfg, run_dir)
    check_device(cfg)
    check_data(cfg)


def tracker_installed(cfg: TrackingConfig) -> None:
    """The tracking backend's package (named as the backend) is installed, else one line naming the extra."""
    if cfg.backend != "none" and importlib.util.find_spec(cfg.backend) is None:
        raise ConfigError("tracking", f"{cfg.backend} is not installed: pip install 'fedunlearn[{cfg.backend}]'")
