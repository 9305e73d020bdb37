"""Per-client statistics training records in the history for the methods that read them (``history.client_stats``).

A method declares each statistic it reads in its own module, as one of two kinds:

* ``ClientStat``: computed by each client on its own data, on the model it received, before it trains (Crab's
  received-model loss); ``forward_passes`` says what it costs in forward passes over the client's data (counted
  in the run's compute);
* ``ServerStat``: computed by the server from the round's models and updates (SIFU's distances).

``client_stat`` / ``server_stat`` register one by name; training asks for those the run's methods read, clients
reply with theirs, and the history stores them per round. Nothing else lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from fedunlearn.core.params import Params
from fedunlearn.data import ArrayDataset

ClientFn = Callable[[nn.Module, ArrayDataset, torch.device, int], float]  # (model, own data, device, batch) → value
ServerFn = Callable[[Params, Params, Mapping[int, Params]], dict[int, float]]  # (M^{t+1}, M^t, updates) → by client


@dataclass(frozen=True)
class ClientStat:
    name: str
    compute: ClientFn
    forward_passes: float = 1.0


@dataclass(frozen=True)
class ServerStat:
    name: str
    compute: ServerFn


_STATS: dict[str, ClientStat | ServerStat] = {}


def _register(stat: ClientStat | ServerStat) -> str:
    held = _STATS.get(stat.name)
    if held is not None and held.compute is not stat.compute:
        raise ValueError(f"client statistic {stat.name!r} is declared twice, differently")
    _STATS[stat.name] = stat
    return stat.name


def client_stat(name: str, compute: ClientFn, forward_passes: float = 1.0) -> str:
    """Declare a statistic each client computes on its data with the received model; returns its name."""
    return _register(ClientStat(name, compute, forward_passes))


def server_stat(name: str, compute: ServerFn) -> str:
    """Declare a statistic the server computes from a round's models and updates; returns its name."""
    return _register(ServerStat(name, compute))


def stat(name: str) -> ClientStat | ServerStat:
    if name not in _STATS:
        raise KeyError(f"unknown client statistic {name!r}; declared: {', '.join(sorted(_STATS))}")
    return _STATS[name]


def client_side(name: str) -> ClientStat:
    """The client statistic ``name`` (a KeyError if it is not one)."""
    found = stat(name)
    if not isinstance(found, ClientStat):
        raise KeyError(f"{name!r} is computed by the server, not by the clients")
    return found


def declared_stats() -> tuple[str, ...]:
    return tuple(sorted(_STATS))


def on_clients(names: frozenset[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``names`` the clients compute, sorted (what a train message asks for)."""
    return tuple(sorted(n for n in names if isinstance(stat(n), ClientStat)))
