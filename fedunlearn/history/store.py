"""HistoryStore: every ``interval``-th round's global model M^t and client updates U_k^t = w_k − M^t.

Layout under the run's ``history/`` folder, one safetensors file per tensor set (never pickle)::

    manifest.json                      rounds, participants, sample counts, per-client stats, sizes and SHA-256
    round_00001/global.safetensors     M^1 (the model the round started from)
    round_00001/client_00003.safetensors  U_3^1, with num_examples in its metadata

Each file and the manifest are written atomically as the round ends (through a ``BackgroundWriter`` in a
run, so that fsync overlaps the next round); nothing is kept in RAM across rounds but the manifest's small
index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import save as save_safetensors

from fedunlearn.fl.params import Params, is_trainable, params_from_safetensors
from fedunlearn.history.writer import FileWriter, atomic_write

MANIFEST = "manifest.json"
RECEIVED_LOSS = "received_loss"  # per-client stat: the received model's mean loss on the client's data
DISTANCE = "distance"  # per-client stat: ‖new aggregate − the client's model‖₂
CLIENT_STATS = (RECEIVED_LOSS, DISTANCE)
DTYPES = {"float32": torch.float32, "float16": torch.float16}  # history.dtype → the stored values' type


class HistoryCorruptError(RuntimeError):
    """A stored history file is missing, truncated or does not match its recorded checksum."""


class HistoryStore:
    """Writes and reads one run's training history (see module docstring for the layout).

    ``writer`` does the file writes (default: at once, in the caller's thread); reads flush it first.
    """

    def __init__(
        self,
        root: Path | str,
        interval: int = 1,
        dtype: str = "float32",
        manifest: str = MANIFEST,
        writer: FileWriter | None = None,
    ) -> None:
        if dtype not in DTYPES:
            raise ValueError(f"history dtype {dtype!r} not in {sorted(DTYPES)}")
        if interval < 1:
            raise ValueError(f"history interval must be >= 1, got {interval}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._writer = writer if writer is not None else FileWriter()
        self.manifest_path = self.root / manifest
        path = self.manifest_path
        if path.exists():
            self._manifest: dict[str, Any] = _load_manifest(path)
            if (self._manifest["interval"], self._manifest["dtype"]) != (interval, dtype):
                raise ValueError(
                    f"{path} was written with interval/dtype {self._manifest['interval']}/"
                    f"{self._manifest['dtype']}, asked for {interval}/{dtype}"
                )
        else:
            self._manifest = {"interval": interval, "dtype": dtype, "rounds": {}, "files": {}}

    @classmethod
    def open(cls, root: Path | str, manifest: str = MANIFEST) -> HistoryStore:
        """Open an existing history for reading (``manifest``: e.g. a copy frozen by ``freeze_manifest``)."""
        index = _load_manifest(Path(root) / manifest)
        return cls(root, index["interval"], index["dtype"], manifest)

    # -- writing -----------------------------------------------------------------------------------

    @property
    def interval(self) -> int:
        return int(self._manifest["interval"])

    @property
    def dtype(self) -> str:
        return str(self._manifest["dtype"])

    def stores(self, round_: int) -> bool:
        """Whether round ``round_`` (1-based) is kept: rounds 1, 1+interval, 1+2·interval, …"""
        return (round_ - 1) % self.interval == 0

    def _encode(self, params: Params, metadata: dict[str, str] | None = None) -> bytes:
        arrays = {k: _cast(v, self.dtype) if is_trainable(v) else np.ascontiguousarray(v) for k, v in params.items()}
        return save_safetensors(arrays, metadata=metadata)

    def _write(self, rel: str, payload: bytes) -> None:
        self._writer.write(self.root / rel, payload)
        self._manifest["files"][rel] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}

    def record_round(
        self,
        round_: int,
        global_params: Params,
        updates: Mapping[int, Params],
        num_examples: Mapping[int, int],
        stats: Mapping[str, Mapping[int, float]] | None = None,
    ) -> None:
        """Record who trained in round ``round_`` and, if the round is kept, M^t and each U_k^t; ``stats``: named
        per-client scalars of the round (kept for every round, stored or not)."""
        stored = self.stores(round_)
        if stored:
            self._write(f"{_round_dir(round_)}/global.safetensors", self._encode(global_params))
            for cid in sorted(updates):
                meta = {"num_examples": str(num_examples[cid])}
                self._write(_client_file(round_, cid), self._encode(updates[cid], meta))
        self._manifest["rounds"][str(round_)] = {
            "stored": stored,
            "clients": sorted(int(c) for c in updates),
            "num_examples": {str(c): int(num_examples[c]) for c in sorted(updates)},
        }
        if stats:
            self._manifest["rounds"][str(round_)]["stats"] = {
                name: {str(c): float(v) for c, v in sorted(values.items())} for name, values in sorted(stats.items())
            }
        self._write_manifest()

    def _write_manifest(self) -> None:
        self._writer.write(self.manifest_path, json.dumps(self._manifest, separators=(",", ":")).encode())

    # -- reading -----------------------------------------------------------------------------------

    def rounds(self) -> list[int]:
        """All recorded rounds, stored or not."""
        return sorted(int(r) for r in self._manifest["rounds"])

    def rounds_stored(self) -> list[int]:
        return [r for r in self.rounds() if self._manifest["rounds"][str(r)]["stored"]]

    def participants(self, round_: int) -> list[int]:
        """Client ids whose update was aggregated in round ``round_`` (known for every round)."""
        return list(self._round(round_)["clients"])

    def num_examples(self, round_: int, cid: int) -> int:
        return int(self._round(round_)["num_examples"][str(cid)])

    def client_stats(self, round_: int, name: str) -> dict[int, float] | None:
        """The scalar ``name`` of each client of round ``round_``, as recorded in training; None if it was not."""
        values = self._round(round_).get("stats", {}).get(name)
        return None if values is None else {int(c): float(v) for c, v in values.items()}

    def first_round_of(self, cids: list[int]) -> int | None:
        """The first round in which any of ``cids`` took part, or None if none ever did."""
        wanted = set(cids)
        return next((r for r in self.rounds() if wanted & set(self.participants(r))), None)

    def global_model(self, round_: int) -> Params:
        """M^t: the global model round ``round_`` started from (float32)."""
        self._require_stored(round_)
        return self._read(f"{_round_dir(round_)}/global.safetensors", f"round {round_}, global model")

    def client_update(self, round_: int, cid: int) -> Params:
        """U_k^t = w_k^t − M^t of client ``cid`` in round ``round_`` (float32)."""
        self._require_stored(round_)
        if cid not in self.participants(round_):
            raise KeyError(f"client {cid} did not take part in round {round_}")
        return self._read(_client_file(round_, cid), f"round {round_}, client {cid}")

    def truncate(self, last_round: int) -> None:
        """Forget rounds after ``last_round`` (a resumed run records them again) and delete their files."""
        self._writer.flush()
        for r in [r for r in self.rounds() if r > last_round]:
            del self._manifest["rounds"][str(r)]
            prefix = f"{_round_dir(r)}/"
            for rel in [f for f in self._manifest["files"] if f.startswith(prefix)]:
                del self._manifest["files"][rel]
        for folder in self.root.glob("round_*"):
            if int(folder.name.split("_")[1]) > last_round:
                for file in folder.iterdir():
                    file.unlink()
                folder.rmdir()
        self._write_manifest()

    def verify(self) -> None:
        """Check every stored file against the manifest; raise HistoryCorruptError naming round and client."""
        for round_ in self.rounds_stored():
            self._check(f"{_round_dir(round_)}/global.safetensors", f"round {round_}, global model")
            for cid in self.participants(round_):
                self._check(_client_file(round_, cid), f"round {round_}, client {cid}")

    def freeze_manifest(self, name: str) -> Path:
        """Copy the manifest as it is now to ``name``: the rounds so far, pinned for a certificate while
        training goes on (stored files are never rewritten, so the copy stays valid)."""
        path = self.root / name
        self._writer.flush()
        atomic_write(path, self.manifest_path.read_bytes())  # at once: the caller hashes it next
        return path

    def total_bytes(self) -> int:
        """Bytes of all stored tensor files (headers included, manifest excluded)."""
        return sum(int(f["bytes"]) for f in self._manifest["files"].values())

    def _round(self, round_: int) -> dict[str, Any]:
        try:
            return dict(self._manifest["rounds"][str(round_)])
        except KeyError:
            raise KeyError(f"round {round_} is not in the history (rounds 1..{len(self.rounds())})") from None

    def _require_stored(self, round_: int) -> None:
        if not self._round(round_)["stored"]:
            raise KeyError(f"round {round_} is not stored (history.interval={self.interval})")

    def _check(self, rel: str, what: str) -> bytes:
        self._writer.flush()
        entry = self._manifest["files"].get(rel)
        path = self.root / rel
        if entry is None or not path.exists():
            raise HistoryCorruptError(f"history file for {what} is missing: {path}")
        payload = path.read_bytes()
        if len(payload) != entry["bytes"]:
            raise HistoryCorruptError(
                f"history file for {what} is truncated ({len(payload)} of {entry['bytes']} bytes): {path}"
            )
        if hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise HistoryCorruptError(f"history file for {what} is corrupted (checksum mismatch): {path}")
        return payload

    def _read(self, rel: str, what: str) -> Params:
        arrays = params_from_safetensors(self._check(rel, what))
        return {k: _cast(v, "float32") if is_trainable(v) else v for k, v in arrays.items()}


def _load_manifest(path: Path) -> dict[str, Any]:
    """The parsed manifest; HistoryCorruptError when it is missing, not JSON, or lacks interval and dtype."""
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise HistoryCorruptError(f"history manifest is missing: {path}") from None
    except json.JSONDecodeError as err:
        raise HistoryCorruptError(f"history manifest is unreadable ({err}): {path}") from None
    if not isinstance(manifest, dict) or not {"interval", "dtype"} <= manifest.keys():
        raise HistoryCorruptError(f"history manifest is unreadable (no interval/dtype index): {path}")
    return manifest


def _cast(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` as ``dtype`` (a DTYPES name), through torch: numpy converts to and from float16 without vector
    instructions (6× slower on an 11M-parameter model); the rounding is the same (IEEE round-to-nearest-even)."""
    return torch.from_numpy(np.ascontiguousarray(values)).to(DTYPES[dtype]).numpy()


def _round_dir(round_: int) -> str:
    return f"round_{round_:05d}"


def _client_file(round_: int, cid: int) -> str:
    return f"{_round_dir(round_)}/client_{cid:05d}.safetensors"
