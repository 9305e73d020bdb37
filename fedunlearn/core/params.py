"""Model parameters as ordered name → numpy arrays, and the FedAvg arithmetic on them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from safetensors.numpy import load as load_safetensors
from torch import nn

Params = dict[str, np.ndarray]


def get_params(model: nn.Module) -> Params:
    """A copy of the model's state as float32/int numpy arrays, in state_dict order."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def set_params(model: nn.Module, params: Params) -> None:
    model.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in params.items()})


def nbytes(params: Params) -> int:
    """Bytes of the arrays' payload (what a message carrying ``params`` sends, headers aside)."""
    return sum(int(v.nbytes) for v in params.values())


def is_trainable(array: np.ndarray) -> bool:
    """Floating arrays take part in updates; integer buffers (e.g. num_batches_tracked) do not."""
    return bool(np.issubdtype(array.dtype, np.floating))


def subtract(a: Params, b: Params) -> Params:
    """a − b over the floating arrays (the update of a client model a from global model b)."""
    return {k: a[k] - b[k] for k in a if is_trainable(a[k])}


def add(base: Params, delta: Params, scale: float = 1.0) -> Params:
    """base + scale·delta; arrays absent from delta (integer buffers) are kept from base."""
    return {k: (v + scale * delta[k]).astype(v.dtype) if k in delta else v.copy() for k, v in base.items()}


def weighted_sum(deltas: Iterable[Params], weights: Sequence[float]) -> Params:
    """Σ_i w_i · delta_i, accumulated in float64 for order-stable sums, returned as float32. ``deltas`` is
    consumed once, one at a time, so a lazily read sequence never holds more than one of them in memory."""
    acc: dict[str, np.ndarray] = {}
    count = 0
    for d, w in zip(deltas, weights, strict=True):
        for k, v in d.items():
            if k in acc:
                acc[k] += w * v.astype(np.float64)
            else:
                acc[k] = w * v.astype(np.float64)
        count += 1
    if not count:
        raise ValueError("weighted_sum of no updates")
    return {k: v.astype(np.float32) for k, v in acc.items()}


def sample_weights(num_examples: Sequence[int]) -> list[float]:
    """FedAvg weights p_k = n_k / Σ n."""
    total = float(sum(num_examples))
    if total <= 0:
        raise ValueError("no training samples among the aggregated clients")
    return [n / total for n in num_examples]


def flatten(params: Params) -> np.ndarray:
    """The floating arrays concatenated into one float64 vector, in sorted-name order
    (so that params read from disk and from a model flatten alike)."""
    parts = [params[k].astype(np.float64).ravel() for k in sorted(params) if is_trainable(params[k])]
    return np.concatenate(parts) if parts else np.zeros(0)


def params_from_safetensors(payload: bytes) -> Params:
    """A safetensors payload's arrays, in name order (safetensors returns them in an order that varies from process
    to process; nothing downstream should see that)."""
    return dict(sorted(load_safetensors(payload).items()))


def distances_to(new: Params, start: Params, deltas: Mapping[int, Params]) -> dict[int, float]:
    """‖new − (start + δ_c)‖₂ for each client c: how far each client's model lies from the new aggregate."""
    a, b = flatten(new), flatten(start)
    return {c: float(np.linalg.norm(a - (b + flatten(d)))) for c, d in deltas.items()}


def unflatten(vector: np.ndarray, like: Params) -> Params:
    """Inverse of ``flatten``: floating arrays from ``vector`` with the shapes of ``like``."""
    out: Params = {}
    offset = 0
    for k in sorted(like):
        v = like[k]
        if not is_trainable(v):
            continue
        out[k] = vector[offset : offset + v.size].reshape(v.shape).astype(np.float32)
        offset += v.size
    if offset != vector.size:
        raise ValueError(f"vector has {vector.size} values, parameters need {offset}")
    return out
