"""What a killed run needs to resume exactly: training's progress after each round, and each finished stage.

``RunCheckpoint.stage(key, model, compute)`` is the one wrapper that makes a stage resumable: a stage that
finished before the interruption is read back (its JSON and its model), any other runs and is saved. Training
saves its progress after every round (``save_training``). Files are safetensors + JSON, written atomically.

Layout in the run directory::

    checkpoint/state.json               config (fingerprint and keys), training progress, finished stages
    checkpoint/training.safetensors     the global model after the last finished training round
    models/trained.safetensors          the trained model (once training is done)
    models/<name>.safetensors           each stage's model (also what certificates hash)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetensors.numpy import save as save_safetensors

from fedunlearn.config import Config
from fedunlearn.core.params import Params, params_from_safetensors
from fedunlearn.history.writer import FileWriter

CHECKPOINT_DIR = "checkpoint"
MODELS_DIR = "models"
NOT_FINGERPRINTED = ("resume", "ray", "progress", "certificate")  # may change between a run and its resumption
# keys that may too: what the history records besides the models (methods fall back when a round lacks it)
KEYS_NOT_FINGERPRINTED = ("history.client_stats", "fl.exact_reference", "evaluation.references_cache")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used: no run there, another config, or a damaged file."""


def fingerprinted(cfg: Config) -> dict[str, Any]:
    """The config keys that decide a run's results, flattened (``fl.lr`` → value)."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            flat[prefix[:-1]] = node

    walk({k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_FINGERPRINTED}, "")
    return {k: v for k, v in flat.items() if k not in KEYS_NOT_FINGERPRINTED}


def config_fingerprint(cfg: Config) -> str:
    """SHA-256 of ``fingerprinted(cfg)``."""
    return hashlib.sha256(json.dumps(fingerprinted(cfg), sort_keys=True, default=str).encode()).hexdigest()


def save_params(path: Path, params: Params, writer: FileWriter | None = None) -> str:
    """Write ``params`` as safetensors atomically (through ``writer``, default at once); return its SHA-256."""
    payload = save_safetensors({k: v for k, v in sorted(params.items())})
    (writer or FileWriter()).write(path, payload)
    return hashlib.sha256(payload).hexdigest()


def load_params(path: Path) -> Params:
    return params_from_safetensors(path.read_bytes())


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(now), key=str)
    return [f"{k} ({saved.get(k, '-')!r} → {now.get(k, '-')!r})" for k in keys if saved.get(k) != now.get(k)]


class RunCheckpoint:
    """Progress of one run in ``run_dir``, tied to the config that made it.

    ``writer`` does the file writes (default: at once); a run shares one with its HistoryStore, so that the
    checkpoint naming a round lands after that round's history.
    """

    def __init__(self, run_dir: Path, cfg: Config, writer: FileWriter | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / CHECKPOINT_DIR
        self.config = fingerprinted(cfg)
        self.fingerprint = config_fingerprint(cfg)
        self._writer = writer if writer is not None else FileWriter()
        self._state: dict[str, Any] = {"fingerprint": self.fingerprint, "config": self.config, "training": None}
        self._state["stages"] = {}
        self._state["pinned"] = {}  # other files a resume reads (relative path → SHA-256)

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def exists(self) -> bool:
        return self.state_path.exists()

    @staticmethod
    def exists_in(run_dir: Path) -> bool:
        """Whether ``run_dir`` holds a checkpoint (a run that ``resume=true`` can continue)."""
        return (Path(run_dir) / CHECKPOINT_DIR / "state.json").exists()

    def load(self) -> None:
        """Read the saved progress; CheckpointError naming the keys that differ when another config made it."""
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CheckpointError(
                f"{self.state_path} is unreadable ({err}); this run cannot be resumed: start it again in another "
                f"hydra.run.dir, or delete {self.run_dir}"
            ) from None
        if state.get("fingerprint") != self.fingerprint:
            differ = _differences(state.get("config", {}), self.config)
            raise CheckpointError(
                f"the run in {self.run_dir} was made with a different config: {'; '.join(differ[:6]) or 'unknown'}"
                f"{' ...' if len(differ) > 6 else ''}; resume needs the same overrides (ray.* may differ)"
            )
        self._state = state

    def start(self) -> None:
        """Mark the directory as holding this run (before anything else is written)."""
        self._save()

    def _save(self) -> None:
        self._writer.write(self.state_path, json.dumps(self._state, separators=(",", ":")).encode())

    # -- training ----------------------------------------------------------------------------------

    def _check(self, path: Path, sha256: str) -> None:
        """CheckpointError, saying what to do, unless ``path`` is there with the SHA-256 ``state.json`` recorded."""
        self._writer.flush()
        if not path.exists():
            damage = "is missing"
        elif file_sha256(path) != sha256:
            damage = "does not match its checksum (damaged or truncated)"
        else:
            return
        raise CheckpointError(
            f"{path} {damage} in {self.state_path}; this run cannot be resumed (only the latest state is kept): "
            f"start it again in another hydra.run.dir, or delete {self.run_dir}"
        )

    def verify(self) -> None:
        """Check every file a resume reads (training's model, each finished stage's model, the pinned files)
        against its checksum."""
        progress = self._state["training"]
        if progress is not None:
            self._check(self.root / "training.safetensors", progress["sha256"])
        for saved in self._state["stages"].values():
            self._check(self.model_path(saved["model"]), saved["sha256"])
        for rel, sha in self._state.get("pinned", {}).items():
            self._check(self.run_dir / rel, sha)

    def save_pinned(self, path: Path, params: Params) -> None:
        """Write ``params`` to ``path`` and pin its checksum: saved with the next stage, verified on resume."""
        self._state.setdefault("pinned", {})[str(path.relative_to(self.run_dir))] = save_params(path, params)

    def load_pinned(self, path: Path) -> Params:
        """``path``'s parameters, after checking the checksum ``save_pinned`` recorded."""
        self._check(path, self._state.get("pinned", {}).get(str(path.relative_to(self.run_dir)), ""))
        return load_params(path)

    def training(self) -> tuple[dict[str, Any], Params] | None:
        """(progress, model after its last round) of an interrupted or finished training, if any."""
        progress = self._state["training"]
        if progress is None:
            return None
        path = self.root / "training.safetensors"
        self._check(path, progress["sha256"])
        return dict(progress), load_params(path)

    def save_training(self, progress: dict[str, Any], params: Params) -> None:
        """Record training up to ``progress['round']`` (model file first, then the state that names it)."""
        sha = save_params(self.root / "training.safetensors", params, self._writer)
        self._state["training"] = {**progress, "sha256": sha}
        self._save()

    # -- stages ------------------------------------------------------------------------------------

    def model_path(self, name: str) -> Path:
        return self.run_dir / MODELS_DIR / f"{name}.safetensors"

    def done(self, key: str) -> bool:
        return key in self._state["stages"]

    def stage(
        self, key: str, model: str, compute: Callable[[], tuple[dict[str, Any], Params]]
    ) -> tuple[dict[str, Any], Params]:
        """Stage ``key``'s (JSON, model): read back if it finished before, else ``compute()``d and saved, its model
        as ``models/<model>.safetensors``."""
        saved = self._state["stages"].get(key)
        path = self.model_path(model)
        if saved is not None:
            self._check(path, saved["sha256"])
            return dict(saved["result"]), load_params(path)
        result, params = compute()
        sha = save_params(path, params)  # at once: certificates hash it next
        self._state["stages"][key] = {"result": result, "model": model, "sha256": sha}
        self._save()
        return result, params
