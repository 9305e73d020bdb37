"""FUKD (Wu et al., 2022): subtract the forgotten clients' accumulated updates, then distil the original model
into the result on the server's unlabeled samples (softened softmax at temperature T)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from fedunlearn.fl.params import add, get_params, sample_weights, set_params, weighted_sum
from fedunlearn.models import build_model
from fedunlearn.unlearning.base import UnlearningContext, UnlearningMethod, UnlearningOutcome
from fedunlearn.unlearning.registry import register

DISTILL_SEED_STREAM = 6


@register
class KnowledgeDistillation(UnlearningMethod):
    name = "kd"

    def unlearn(self, ctx: UnlearningContext) -> UnlearningOutcome:
        cfg, data = ctx.cfg.unlearning.kd, ctx.require_data()
        gone = set(ctx.forget)
        contributions, weights = [], []
        for t in ctx.history.rounds():
            cids = ctx.history.participants(t)
            if not gone & set(cids):
                continue
            p = sample_weights([ctx.history.num_examples(t, c) for c in cids])
            for c, pc in zip(cids, p, strict=True):
                if c in gone:
                    contributions.append(ctx.history.client_update(t, c))
                    weights.append(pc)
        start = add(ctx.trained, weighted_sum(contributions, weights), scale=-1.0) if contributions else ctx.trained
        teacher = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        set_params(teacher, ctx.trained)
        teacher.eval()
        student = build_model(ctx.cfg.model, data.input_shape, data.num_classes, ctx.cfg.seed)
        set_params(student, start)
        x = torch.from_numpy(data.server.x)
        with torch.no_grad():
            soft_targets = F.softmax(teacher(x) / cfg.temperature, dim=1)
        optimizer = torch.optim.SGD(student.parameters(), lr=cfg.lr, momentum=0.9)
        generator = torch.Generator().manual_seed(ctx.cfg.seed * 1000 + DISTILL_SEED_STREAM)
        outcome = UnlearningOutcome(start, info={"subtracted_updates": len(contributions)})
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            student.train()
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(x), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                optimizer.zero_grad(set_to_none=True)
                log_probs = F.log_softmax(student(x[idx]) / cfg.temperature, dim=1)
                loss = F.kl_div(log_probs, soft_targets[idx], reduction="batchmean") * cfg.temperature**2
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
            outcome.params = get_params(student)
            accuracy, test_loss = ctx.evaluate(outcome.params)
            outcome.rounds.add(self.name, epoch, cfg.epochs, accuracy, test_loss, time.perf_counter() - t0, [])
        return outcome
