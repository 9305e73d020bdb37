"""FUKD (Wu, Zhu, Mitra, 2022): subtract the forgotten clients' accumulated updates, then distil the original model
into the result on the server's unlabeled samples (softened softmax at temperature T).

M' = M^E − Σ_t p_u^t U_u^t (p_u^t the client's FedAvg weight in round t), then the student M' learns the original
model's softened predictions on ``dataset.server_samples`` unlabeled samples with KL·T², SGD with momentum 0.9. No
client trains. No reference code was checked; the defaults are fedunlearn's (see README → Fidelity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fedunlearn.config import Config, ConfigError, spec
from fedunlearn.core.params import Params, add, get_params, sample_weights, set_params, weighted_sum
from fedunlearn.seeds import declare, torch_seed
from fedunlearn.unlearning.base import (
    UnlearningContext,
    UnlearningMethod,
    UnlearningOutcome,
    require_every_round,
)
from fedunlearn.unlearning.registry import register

DISTILL = declare("distillation", 7)  # the order of the server's samples in distillation


@dataclass
class KDHParams:
    """The distillation: ``epochs`` passes of SGD (momentum 0.9) over the server's samples, KL·T² to the teacher's
    softened predictions at temperature T."""

    epochs: int = spec(ge=1)  # at most this many (all of them when tolerance is null)
    tolerance: float | None = spec(gt=0.0, lt=1.0)  # converged: an epoch's mean loss ≤ tolerance × the first's
    lr: float = spec(gt=0.0)
    temperature: float = spec(gt=0.0)
    batch_size: int = spec(ge=1)
    max_grad_norm: float | None = spec(gt=0.0)  # clip each distillation step's gradient (null: no clipping)


def require_server_samples(cfg: Config, method: str) -> None:
    require_every_round(cfg, method)
    if cfg.dataset.server_samples < 1:
        raise ConfigError("dataset.server_samples", f"{method} distils on the server's samples: must be >= 1")


def subtract_contributions(ctx: UnlearningContext) -> tuple[Params, int]:
    """M^E − Σ_t p_u^t U_u^t over every round the forgotten clients took part in; and how many updates."""
    gone = set(ctx.forget)
    contributions, weights = [], []
    for t in ctx.history.rounds():
        cids = ctx.history.participants(t)
        if not gone & set(cids):
            continue
        for c, w in zip(cids, sample_weights([ctx.history.num_examples(t, c) for c in cids]), strict=True):
            if c in gone:
                contributions.append(ctx.history.client_update(t, c))
                weights.append(w)
    if not contributions:
        return ctx.trained, 0
    return add(ctx.trained, weighted_sum(contributions, weights), scale=-1.0), len(contributions)


def fukd(ctx: UnlearningContext, p: KDHParams, tag: str) -> UnlearningOutcome:
    """FUKD's step: subtract the forgotten clients' contributions, then distil on the server's samples."""
    start, subtracted = subtract_contributions(ctx)
    teacher, student = ctx.model(), ctx.model()
    set_params(teacher, ctx.trained)
    teacher.eval()
    set_params(student, start)
    x = torch.from_numpy(ctx.data.server.x)
    with torch.no_grad():
        soft_targets = F.softmax(teacher(x) / p.temperature, dim=1)
    optimizer = torch.optim.SGD(student.parameters(), lr=p.lr, momentum=0.9)
    generator = torch.Generator().manual_seed(torch_seed(ctx.cfg.seed, DISTILL))
    outcome = UnlearningOutcome(start, info={"subtracted_updates": subtracted})
    t_distill = time.perf_counter()
    first_loss = None
    for epoch in range(1, p.epochs + 1):
        t0 = time.perf_counter()
        student.train()
        order = torch.randperm(len(x), generator=generator)
        total, batches = 0.0, 0
        for i in range(0, len(x), p.batch_size):
            idx = order[i : i + p.batch_size]
            optimizer.zero_grad(set_to_none=True)
            log_probs = F.log_softmax(student(x[idx]) / p.temperature, dim=1)
            loss = F.kl_div(log_probs, soft_targets[idx], reduction="batchmean") * p.temperature**2
            loss.backward()  # type: ignore[no-untyped-call]
            if p.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(student.parameters(), p.max_grad_norm)
            optimizer.step()
            total, batches = total + float(loss.detach()), batches + 1
        mean = total / max(1, batches)
        first_loss = mean if first_loss is None else first_loss
        converged = p.tolerance is not None and epoch > 1 and mean <= p.tolerance * first_loss
        outcome.params = get_params(student)
        last = p.epochs if not converged else epoch  # (the summary line is logged at the last epoch run)
        ctx.step(outcome.rounds, tag, epoch, last, outcome.params, t0, [], unit="epoch")
        if converged:
            break
    outcome.info["distill_epochs"] = epoch
    outcome.info["distill_s"] = time.perf_counter() - t_distill  # server work, which client-epochs do not count
    ctx.clients.charge(server_forward_samples=len(x), server_train_samples=epoch * len(x))
    return outcome


@register("kd")
class KnowledgeDistillation(UnlearningMethod[KDHParams]):
    """FUKD: subtract the forgotten clients' accumulated updates, repair by distillation on the server."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_server_samples(cfg, self.name)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        return fukd(ctx, self.hparams, self.name)
