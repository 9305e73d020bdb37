"""What a client does in a round — the model's local training and evaluation — shared by the ClientApp
(``client_app.py``) and the in-process federation (``federation.LocalTrainer``).

``run_client`` is the one place where a client trains in a round.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from fedunlearn.config import Config, ModelConfig
from fedunlearn.core.client_stats import client_side
from fedunlearn.core.params import Params, get_params, set_params
from fedunlearn.data import ArrayDataset, DataRecipe, FederatedData, federated_data
from fedunlearn.models import build_model
from fedunlearn.seeds import Stream, rng

CPU = torch.device("cpu")


@dataclass(frozen=True)
class TaskConfig:
    """What a client needs to train: its data's recipe, the model, the simulated dropout rate, its torch threads
    and the samples per forward pass of its received-model loss (``evaluation.batch_size``)."""

    data: DataRecipe
    model: ModelConfig
    dropout_rate: float
    threads: int
    eval_batch: int

    @classmethod
    def from_config(cls, cfg: Config) -> TaskConfig:
        return cls(
            DataRecipe.from_config(cfg),
            cfg.model,
            cfg.fl.dropout_rate,
            max(1, int(cfg.ray.num_cpus_per_client)),
            cfg.evaluation.batch_size,
        )

    def federation(self) -> FederatedData:
        """The federation's data (built once per process, from the recipe)."""
        return federated_data(self.data)

    def model_for(self, data: FederatedData) -> nn.Module:
        return build_model(self.model, data.input_shape, data.num_classes, self.data.seed)

    def worker_model(self, data: FederatedData) -> nn.Module:
        """This process's model of the task, built once and reused by every client it trains (each loads its
        parameters and buffers over it: building a model costs as much as a few SGD steps of a small one)."""
        key = (repr(self.model), tuple(data.input_shape), data.num_classes, self.data.seed)
        if key not in _MODELS:
            _MODELS.clear()
            _MODELS[key] = self.model_for(data)
        return _MODELS[key]


_MODELS: dict[tuple[str, tuple[int, ...], int, int], nn.Module] = {}


def warm_up(model: nn.Module) -> None:
    """Pay a process's one-off torch costs now, not inside a timed stage: the first optimizer a process constructs
    imports torch's compiler stack (about 1.4 s here)."""
    torch.optim.SGD(model.parameters(), lr=0.0)


@dataclass(frozen=True)
class TrainPlan:
    """Local training of one round: ``epochs`` may be fractional (a share of one epoch's SGD steps);
    ``max_grad_norm`` clips each step's gradient to that L2 norm (None: no clipping, as in training);
    ``stats``: the client statistics (``fedunlearn.core.client_stats``) to compute on the received model first."""

    epochs: float
    lr: float
    batch_size: int
    momentum: float
    max_grad_norm: float | None = None
    optimizer: str = "sgd"  # sgd (with momentum) | adam (torch's defaults otherwise; a fresh state every round)
    max_steps: int | None = None  # at most this many SGD steps per client, whatever ``epochs`` asks (None: no cap)
    stats: tuple[str, ...] = ()  # client statistics to report, computed on the received model before training

    @classmethod
    def from_config(
        cls, cfg: Config, epochs: float | None = None, max_grad_norm: float | None = None, stats: tuple[str, ...] = ()
    ) -> TrainPlan:
        return cls(
            epochs=cfg.fl.local_epochs if epochs is None else epochs, lr=cfg.fl.lr, batch_size=cfg.fl.batch_size,
            momentum=cfg.fl.momentum, max_grad_norm=max_grad_norm, optimizer=cfg.fl.optimizer, stats=stats,
        )  # fmt: skip


@dataclass(frozen=True)
class ClientUpdate:
    """A client's model after local training, identified by its stable client id."""

    cid: int
    params: Params
    num_examples: int
    epochs: float  # epochs of local SGD done (steps / steps per epoch)
    loss: float
    stats: dict[str, float] = field(default_factory=dict)  # the plan's client statistics, by name


def to_device(model: nn.Module, device: torch.device) -> nn.Module:
    """``model.to(device)``, without its walk over every submodule when the model is there already (a worker's
    model on the CPU, for every client it trains)."""
    first = next(model.parameters(), None)
    if first is None or first.device != device:
        model.to(device)
    return model


def sgd_steps(num_examples: int, batch_size: int, epochs: float) -> int:
    """SGD steps for ``epochs`` passes over ``num_examples`` samples (at least one step)."""
    return max(1, round(epochs * math.ceil(num_examples / batch_size)))


def train_local(
    model: nn.Module, data: ArrayDataset, plan: TrainPlan, seed: int, device: torch.device
) -> tuple[float, float]:
    """Minibatch SGD (reshuffled by ``seed`` each epoch) for ``plan.epochs``; (mean loss, epochs done)."""
    if len(data) == 0:
        raise ValueError("a client with no training samples cannot train")
    to_device(model, device).train()
    optimizer: torch.optim.Optimizer
    if plan.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=plan.lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=plan.lr, momentum=plan.momentum)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.from_numpy(data.x).to(device)
    y = torch.from_numpy(data.y).to(device)
    generator = torch.Generator().manual_seed(seed)
    per_epoch = math.ceil(len(data) / plan.batch_size)
    steps = sgd_steps(len(data), plan.batch_size, plan.epochs)
    if plan.max_steps is not None:
        steps = min(steps, plan.max_steps)
    total = 0.0
    done = 0
    while done < steps:
        order = torch.randperm(len(data), generator=generator).to(device)
        for start in range(0, len(data), plan.batch_size):
            idx = order[start : start + plan.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            if plan.max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), plan.max_grad_norm)
            optimizer.step()
            total += float(loss.detach())
            done += 1
            if done == steps:
                break
    to_device(model, CPU)
    return total / steps, steps / per_epoch


def drops_out(seed: int, rate: float) -> bool:
    """Whether the client given this round's ``seed`` fails: a pure function of the seed, so a replay
    with the same seeds sees the same failures."""
    return rate > 0.0 and float(rng(seed, Stream.DROPOUT).random()) < rate


FAULT_ENV = "FEDUNLEARN_INJECT_FAULT"


class InjectedFault(RuntimeError):
    """Raised by a ClientApp that ``FEDUNLEARN_INJECT_FAULT`` names (for testing how a run handles a crash)."""


def inject_fault(group: str, cid: int) -> None:
    """Raise InjectedFault if ``FEDUNLEARN_INJECT_FAULT`` names this round and client: ``<group>:<cid>``, e.g.
    ``train-2:1`` (client 1 in training round 2); several comma-separated."""
    wanted = {w.strip() for w in os.environ.get(FAULT_ENV, "").split(",") if w.strip()}
    if f"{group}:{cid}" in wanted:
        raise InjectedFault(f"injected fault in {group} for client {cid} ({FAULT_ENV})")


def run_client(
    task: TaskConfig, cid: int, params: Params, plan: TrainPlan, seed: int, device: torch.device, group: str = ""
) -> ClientUpdate:
    """Client ``cid`` trains ``params`` on its partition as ``plan`` says (in round ``group``)."""
    inject_fault(group, cid)
    data = task.federation()
    model = task.worker_model(data)
    set_params(model, params)
    own = data.client(cid)
    stats = {name: client_side(name).compute(model, own, device, task.eval_batch) for name in plan.stats}
    loss, epochs = train_local(model, own, plan, seed, device)
    return ClientUpdate(
        cid=cid, params=get_params(model), num_examples=len(data.partitions[cid]), epochs=epochs, loss=loss, stats=stats
    )


def mean_loss(model: nn.Module, data: ArrayDataset, device: torch.device, batch_size: int) -> float:
    """Mean cross-entropy of ``model`` (evaluation mode, on ``device``) on ``data``, ``batch_size`` samples per
    forward pass."""
    logits = torch.from_numpy(predict_logits(model, data.x, batch_size, device))
    return float(nn.functional.cross_entropy(logits, torch.from_numpy(data.y), reduction="sum")) / max(1, len(data))


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int, device: torch.device = CPU) -> np.ndarray:
    """Logits (N × classes) for inputs ``x`` in evaluation mode, computed on ``device`` (the model is moved there)."""
    to_device(model, device).eval()
    outs = [model(torch.from_numpy(x[i : i + batch_size]).to(device)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, 0), dtype=np.float32)
