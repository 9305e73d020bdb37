"""FUKD (Wu et al., 2022): subtract the forgotten clients' accumulated updates, then distil the original model
into the result on the server's unlabeled samples (softened softmax at temperature T)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fedunlearn.config import Config, ConfigError, spec
from fedunlearn.fl.params import add, get_params, sample_weights, set_params, weighted_sum
from fedunlearn.models import build_model
from fedunlearn.seeds import Stream, torch_seed
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome, require_every_round
from fedunlearn.unlearning.registry import register


@dataclass
class KDParams:
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    temperature: float = spec(gt=0.0)
    batch_size: int = spec(ge=1)


@register("kd")
class KnowledgeDistillation(UnlearningMethod[KDParams]):
    def validate(self, cfg: Config) -> None:
        require_every_round(cfg, self.name)
        if cfg.dataset.server_samples < 1:
            raise ConfigError("dataset.server_samples", "kd distils on the server's samples: must be >= 1")

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        p, data = self.params, ctx.data
        gone = set(ctx.forget)
        contributions, weights = [], []
        for t in ctx.history.rounds():
            cids = ctx.history.participants(t)
            if not gone & set(cids):
                continue
            w = sample_weights([ctx.history.num_examples(t, c) for c in cids])
            for c, wc in zip(cids, w, strict=True):
                if c in gone:
                    contributions.append(ctx.history.client_update(t, c))
                    weights.append(wc)
        start = add(ctx.trained, weighted_sum(contributions, weights), scale=-1.0) if contributions else ctx.trained
        teacher = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        set_params(teacher, ctx.trained)
        teacher.eval()
        student = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        set_params(student, start)
        x = torch.from_numpy(data.server.x)
        with torch.no_grad():
            soft_targets = F.softmax(teacher(x) / p.temperature, dim=1)
        optimizer = torch.optim.SGD(student.parameters(), lr=p.lr, momentum=0.9)
        generator = torch.Generator().manual_seed(torch_seed(ctx.cfg.seed, Stream.DISTILL))
        outcome = UnlearningOutcome(start, info={"subtracted_updates": len(contributions)})
        for epoch in range(1, p.epochs + 1):
            t0 = time.perf_counter()
            student.train()
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), p.batch_size):
                idx = order[i : i + p.batch_size]
                optimizer.zero_grad(set_to_none=True)
                log_probs = F.log_softmax(student(x[idx]) / p.temperature, dim=1)
                loss = F.kl_div(log_probs, soft_targets[idx], reduction="batchmean") * p.temperature**2
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
            outcome.params = get_params(student)
            ctx.step(outcome.rounds, self.name, epoch, p.epochs, outcome.params, t0, [], unit="epoch")
        return outcome
