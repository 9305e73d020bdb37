"""What a killed run needs to resume exactly: the model and progress after each training round, and each
finished unlearning method's outcome. Files are safetensors + JSON, written atomically (temp, fsync, rename).

Layout in the run directory::

    checkpoint/state.json               config fingerprint, training progress, finished methods
    checkpoint/training.safetensors     the global model after the last finished training round
    models/trained.safetensors          the trained model (once training is done)
    models/<method>.safetensors         each method's unlearned model (also what certificates hash)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from fedunlearn.config import Config, ConfigError
from fedunlearn.fl.params import Params
from fedunlearn.history.store import MANIFEST, HistoryStore
from fedunlearn.history.writer import FileWriter

CHECKPOINT_DIR = "checkpoint"
MODELS_DIR = "models"
NOT_FINGERPRINTED = ("resume", "ray")  # may change between a run and its resumption


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: another config, or a damaged file."""


def config_fingerprint(cfg: Config) -> str:
    """SHA-256 of the config keys that decide a run's results."""
    fields = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_FINGERPRINTED}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def save_params(path: Path, params: Params, writer: FileWriter | None = None) -> str:
    """Write ``params`` as safetensors atomically (through ``writer``, default at once); return its SHA-256."""
    payload = save_safetensors({k: v for k, v in sorted(params.items())})
    (writer or FileWriter()).write(path, payload)
    return hashlib.sha256(payload).hexdigest()


def load_params(path: Path) -> Params:
    return dict(load_safetensors(path.read_bytes()))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RunCheckpoint:
    """Progress of one run in ``run_dir``; ``fingerprint`` ties it to the config that made it.

    ``writer`` does the file writes (default: at once); a run shares one with its HistoryStore, so that the
    checkpoint naming a round lands after that round's history.
    """

    def __init__(self, run_dir: Path, fingerprint: str, writer: FileWriter | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHECKPOINT_DIR
        self.fingerprint = fingerprint
        self._writer = writer if writer is not None else FileWriter()
        self._state: dict[str, Any] = {"fingerprint": fingerprint, "training": None, "methods": {}}

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def exists(self) -> bool:
        return self.state_path.exists()

    def load(self) -> None:
        """Read the saved progress; raises CheckpointError when it belongs to another config."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CheckpointError(f"{self.state_path} is unreadable: {err}") from None
        if state.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"the run in {self.run_dir} was made with a different config; resume needs the same overrides "
                "(ray.* and resume may differ)"
            )
        self._state = state

    def _save(self) -> None:
        self._writer.write(self.state_path, json.dumps(self._state, separators=(",", ":")).encode())

    # -- training ----------------------------------------------------------------------------------

    def training(self) -> tuple[dict[str, Any], Params] | None:
        """(progress, model after its last round) of an interrupted or finished training, if any."""
        progress = self._state["training"]
        if progress is None:
            return None
        path = self.root / "training.safetensors"
        self._writer.flush()
        if file_sha256(path) != progress["sha256"]:
            raise CheckpointError(f"{path} does not match its checksum in {self.state_path}")
        return dict(progress), load_params(path)

    def save_training(self, progress: dict[str, Any], params: Params) -> None:
        """Record training up to ``progress['round']`` (model file first, then the state that names it)."""
        sha = save_params(self.root / "training.safetensors", params, self._writer)
        self._state["training"] = {**progress, "sha256": sha}
        self._save()

    # -- unlearning --------------------------------------------------------------------------------

    def model_path(self, name: str) -> Path:
        return self.run_dir / MODELS_DIR / f"{name}.safetensors"

    def method(self, name: str) -> tuple[dict[str, Any], Params] | None:
        """A finished method's saved outcome and unlearned model, if any."""
        saved = self._state["methods"].get(name)
        if saved is None:
            return None
        path = self.model_path(name)
        self._writer.flush()
        if not path.exists() or file_sha256(path) != saved["sha256"]:
            raise CheckpointError(f"{path} is missing or does not match its checksum in {self.state_path}")
        return dict(saved), load_params(path)

    def save_method(self, name: str, outcome: dict[str, Any], params: Params) -> str:
        """Save a finished method's unlearned model and outcome; return the model file's SHA-256."""
        sha = save_params(self.model_path(name), params)  # at once: certificates hash it next
        self._state["methods"][name] = {**outcome, "sha256": sha}
        self._save()
        return sha


def check_run_dir(cfg: Config, run_dir: Path) -> None:
    """Before anything starts: a fresh run needs an unused directory; a resumed one a checkpoint made with
    the same config and an intact history. Raises ConfigError, CheckpointError or HistoryCorruptError."""
    ckpt = RunCheckpoint(run_dir, config_fingerprint(cfg))
    history = run_dir / cfg.history.dir
    if not cfg.resume:
        if ckpt.exists() or (history / MANIFEST).exists():
            raise ConfigError(
                "resume", f"{run_dir} already holds a run; pass resume=true to continue it, or another hydra.run.dir"
            )
        return
    if not ckpt.exists():
        return  # killed before its first checkpoint: starts over
    ckpt.load()
    if ckpt.training() is not None:
        # The manifest lists a round only once all its files are written, so rounds past the checkpoint verify
        # too; the resumed run truncates them and records them again.
        HistoryStore.open(history).verify()
