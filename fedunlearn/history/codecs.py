"""Codecs for stored client updates: what a compressed-uplink federation would have sent, kept as the history.

* ``none``: the update as ``history.dtype`` (float32 or float16).
* ``int8``: uniform symmetric quantisation per block of ``int8_block`` consecutive values (QSGD-style buckets,
  Alistarh et al., NeurIPS 2017, deterministic rounding): q = round(127·x / s), s = max |x| over the block; x̂ =
  q·s/127. 1 byte a value plus a float32 scale a block: ≈ 3.9× smaller than float32 at blocks of 256.
* ``topk``: the ``topk_fraction`` largest-magnitude values of each tensor with **error feedback** (Stich et al.,
  NeurIPS 2018, "Sparsified SGD with memory"): a client keeps what was not sent, e = (U + e) − topk(U + e), and
  adds it to its next stored update, so that the sum of what is stored over a client's rounds misses only its last
  residual. Indices int32 and values in ``history.dtype``: at 1% and float32, 50× smaller than float32.

Pure functions on numpy arrays; the store (``store.py``) applies them to the trainable arrays of a client update and
keeps the residuals. Reads always give float32.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

CODECS = ("none", "int8", "topk")
SEP = "|"  # joins a parameter name and its part (name|scale, name|idx, name|val); parameter names have no '|'


@dataclass(frozen=True)
class Codec:
    """``history.codec`` with its knobs; ``dtype``: the float type of stored values (``history.dtype``)."""

    name: str = "none"
    int8_block: int = 256
    topk_fraction: float = 0.01

    def __post_init__(self) -> None:
        if self.name not in CODECS:
            raise ValueError(f"history codec {self.name!r} not in {list(CODECS)}")
        if self.int8_block < 1:
            raise ValueError(f"history int8_block must be >= 1, got {self.int8_block}")
        if not 0.0 < self.topk_fraction <= 1.0:
            raise ValueError(f"history topk_fraction must be in (0, 1], got {self.topk_fraction}")

    @property
    def stateful(self) -> bool:
        """Whether a client carries state (the error-feedback residual) from one stored update to the next."""
        return self.name == "topk"

    def describe(self) -> dict[str, object]:
        """The codec as recorded in the manifest and in certificates."""
        if self.name == "int8":
            return {"name": "int8", "block": self.int8_block}
        if self.name == "topk":
            return {"name": "topk", "fraction": self.topk_fraction, "error_feedback": True}
        return {"name": "none"}


def int8_encode(values: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, scales): q int8 of ``values``' shape, scales float32 (max |x| of each block of ``block`` values)."""
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    pad = (-flat.size) % block
    blocks = np.pad(flat, (0, pad)).reshape(-1, block)
    scales = np.abs(blocks).max(axis=1).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)[:, None]
    q = np.rint(blocks / safe * 127.0).clip(-127, 127).astype(np.int8)
    return q.ravel()[: flat.size].reshape(values.shape), scales


def int8_decode(q: np.ndarray, scales: np.ndarray, block: int) -> np.ndarray:
    """float32 values from ``int8_encode``'s output."""
    flat = q.astype(np.float32).ravel()
    per_value = np.repeat(scales.astype(np.float32), block)[: flat.size]
    return (flat * per_value / 127.0).reshape(q.shape)


def topk_encode(values: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 into the flattened array, ascending; their values): the ⌈fraction·n⌉ largest |values|."""
    flat = np.ascontiguousarray(values, dtype=np.float32).ravel()
    k = max(1, int(np.ceil(fraction * flat.size))) if flat.size else 0
    if k >= flat.size:
        idx = np.arange(flat.size)
    else:
        idx = np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :])
    return idx.astype(np.int32), flat[idx]


def topk_decode(idx: np.ndarray, vals: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The dense float32 array with ``vals`` at ``idx`` and zeros elsewhere."""
    out = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=np.float32)
    out[idx.astype(np.int64)] = vals.astype(np.float32)
    return out.reshape(shape)


def encode(
    codec: Codec,
    update: dict[str, np.ndarray],
    residual: dict[str, np.ndarray] | None,
    cast: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, np.ndarray] | None]:
    """(arrays to store, metadata, the new residual) for one client update. The metadata is one key, ``codec`` (a
    JSON object; none for ``none``): safetensors writes several keys in no fixed order, and a stored file's bytes
    must not depend on the process. ``cast`` gives stored float values their type (``history.dtype``); topk's new
    residual is float32, None for the other codecs."""
    as_stored: Callable[[np.ndarray], np.ndarray] = cast if cast is not None else np.asarray
    if codec.name == "none":
        return {k: as_stored(v) for k, v in update.items()}, {}, None
    if codec.name == "int8":
        arrays: dict[str, np.ndarray] = {}
        for k, v in update.items():
            arrays[k], arrays[k + SEP + "scale"] = int8_encode(v, codec.int8_block)
        return arrays, {"codec": json.dumps({"name": "int8", "block": codec.int8_block})}, None
    arrays, shapes, new_residual = {}, {}, {}
    for k, v in update.items():
        target = v.astype(np.float32) + (residual[k] if residual is not None and k in residual else 0.0)
        idx, vals = topk_encode(target, codec.topk_fraction)
        stored = as_stored(vals)
        arrays[k + SEP + "idx"], arrays[k + SEP + "val"] = idx, stored
        shapes[k] = list(v.shape)
        new_residual[k] = target - topk_decode(idx, np.asarray(stored, dtype=np.float32), v.shape)
    return arrays, {"codec": json.dumps({"name": "topk", "shapes": shapes}, sort_keys=True)}, new_residual


def decode(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> dict[str, np.ndarray]:
    """The float32 update a stored file holds (files record their codec, so any store reads any file)."""
    info: dict[str, Any] = json.loads(metadata["codec"]) if "codec" in metadata else {"name": "none"}
    name = info["name"]
    if name == "none":
        return {k: v.astype(np.float32) for k, v in arrays.items()}
    if name == "int8":
        block = int(info["block"])
        return {k: int8_decode(v, arrays[k + SEP + "scale"], block) for k, v in sorted(arrays.items()) if SEP not in k}
    if name == "topk":
        shapes = info["shapes"]
        return {
            k: topk_decode(arrays[k + SEP + "idx"], arrays[k + SEP + "val"], tuple(shape))
            for k, shape in sorted(shapes.items())
        }
    raise ValueError(f"unknown history codec {name!r} in a stored file")
