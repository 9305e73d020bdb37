"""FedQUIT (Mora, Valerio, Bellavista, Passarella; arXiv 2408.07587): the leaving client distils its copy of the
global model from a quasi-competent virtual teacher, the server adopts the result, then recovery rounds.

As the authors' code does it (alessiomora/FedQUIT @ e447fa0, ``fedquit_training.py``,
``ModelFedQuitLogitDynamic(dynamic_v=True, dynamic_type="min")``): the teacher is the frozen global model; for each of
the client's samples (x, y) its logits z are copied and the true-class logit z_y replaced by min_c z_c; the student
(initialised as the global model) minimises KL(softmax(z_v/τ) ‖ softmax(student(x)/τ)), τ = 1, batch mean, with Adam
(lr 1e-4), one epoch, batch 32; the server adopts the student. Several leaving clients each distil from the same
teacher; the server takes their students' sample-weighted mean (the code handles one client). The distillation runs
here on the server with the client's data, counted as the client's epochs and as one model sent each way.
The authors recover until test accuracy reaches the retrained model's (``recovery.stop=retrain_accuracy``, an
evaluation protocol); the deployable default stops once the remaining clients' own accuracy is back to the trained
model's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from fedunlearn.config import Config, spec
from fedunlearn.core.params import Params, get_params, set_params, weighted_sum
from fedunlearn.seeds import declare, torch_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.recovery import RecoveryHParams, require_recovery
from fedunlearn.unlearning.registry import register

UNLEARN_CLIENT = declare("leaving client", 11)  # the leaving client's local training (PUF's too)


@dataclass
class FedQUITHParams:
    epochs: int = spec(ge=1)  # the leaving client's distillation epochs
    lr: float = spec(gt=0.0)  # Adam
    batch_size: int = spec(ge=1)
    temperature: float = spec(gt=0.0)  # τ of teacher and student softmax
    recovery: RecoveryHParams = field(default_factory=RecoveryHParams)


def virtual_teacher(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The teacher's logits with each sample's true-class logit replaced by the sample's smallest logit."""
    return logits.scatter(1, labels[:, None], logits.min(dim=1, keepdim=True).values)


def fedquit_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    """KL(softmax(z_v/τ) ‖ softmax(student/τ)), mean over the batch (Keras' KLDivergence)."""
    target = F.softmax(virtual_teacher(teacher, labels) / tau, dim=1)
    return F.kl_div(F.log_softmax(student / tau, dim=1), target, reduction="batchmean")


@register("fedquit")
class FedQUIT(UnlearningMethod[FedQUITHParams]):
    """The leaving client distils from a virtual teacher that hides the true class; then recovery rounds."""

    def validate(self, cfg: Config, methods: list[str]) -> None:
        require_recovery(self.name, self.hparams.recovery, methods)

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, data = self.hparams, ctx.data
        t0 = time.perf_counter()
        teacher = ctx.model()
        set_params(teacher, ctx.trained)
        teacher.eval()
        students, sizes = [], []
        generator = torch.Generator().manual_seed(torch_seed(ctx.cfg.seed, UNLEARN_CLIENT))
        for cid in sorted(ctx.forget):
            own = data.client(cid)
            x, y = torch.from_numpy(own.x), torch.from_numpy(own.y)
            with torch.no_grad():
                z_teacher = teacher(x)
            student = ctx.model()
            set_params(student, ctx.trained)
            optimizer = torch.optim.Adam(student.parameters(), lr=p.lr)
            student.train()
            for _ in range(p.epochs):
                order = torch.randperm(len(y), generator=generator)
                for i in range(0, len(y), p.batch_size):
                    idx = order[i : i + p.batch_size]
                    optimizer.zero_grad(set_to_none=True)
                    fedquit_loss(student(x[idx]), z_teacher[idx], y[idx], p.temperature).backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
            students.append(get_params(student))
            sizes.append(len(y))
        adopted: Params = weighted_sum(students, [n / sum(sizes) for n in sizes])
        # each leaving client trains its student and passes its data through the teacher once
        ctx.charge_clients(
            sorted(ctx.forget),
            p.epochs * len(sizes),
            adopted,
            samples=p.epochs * sum(sizes),
            forward_samples=sum(sizes),
        )
        outcome = UnlearningOutcome(adopted, info={"distilled_clients": sorted(ctx.forget)})
        ctx.step(outcome.rounds, f"{self.name}-distill", 1, 1, adopted, t0, [], unit="epoch")
        outcome.params, recovered, outcome.stop = ctx.recover_until(adopted, p.recovery, f"{self.name}-recovery")
        outcome.rounds.extend(recovered)
        return outcome
