"""Random streams: a run is a pure function of ``seed``.

Each use of randomness draws from its own stream, so that changing one (say, PGA's ascent order) never shifts
another (say, which clients drop out). ``Stream`` holds the run's own streams; a method declares its streams in its
own module with ``declare`` (``CALIBRATION = declare("calibration", 1)``), which refuses a value another stream
holds. Values key the draws: changing one changes every result that depends on it.
"""

from __future__ import annotations

from enum import IntEnum, unique

import numpy as np


@unique
class Stream(IntEnum):
    TRAINING = 0  # clients' shuffling in federated training; retrain and rollback replay it
    SAMPLING = 2  # which clients train in each round
    DROPOUT = 3  # which sampled clients drop out (fl.dropout_rate)
    RECOVERY = 5  # sampling and shuffling of extra FL rounds after an unlearning step (PGA, finetune, ...)
    SUBSAMPLE = 9  # dataset.max_train_samples / max_test_samples
    REFERENCE = 13  # the training seeds of evaluation.references' federations (model initialisation, clients' SGD)
    BACKDOOR = 7919  # which samples a backdoored client poisons


_DECLARED: dict[int, str] = {int(s): s.name.lower() for s in Stream}


def declare(name: str, value: int) -> int:
    """A stream of a method's own: ``name`` says what it draws, ``value`` keys its draws. Two modules share a stream
    only by declaring the same name and value (FedEraser and Crab calibrate alike); another name with a value
    already held is refused, at import."""
    held = _DECLARED.get(value)
    if held is not None and held != name:
        raise ValueError(f"random stream {value} is {held!r}'s; choose another value for {name!r}")
    _DECLARED[value] = name
    return value


def declared() -> dict[int, str]:
    """Every stream so far: value → name (the run's own, and those the imported methods declared)."""
    return dict(_DECLARED)


def rng(seed: int, stream: int, *more: int) -> np.random.Generator:
    """A numpy generator for ``stream`` (and optional sub-keys such as a round or client id)."""
    return np.random.default_rng([seed, int(stream), *more])


def client_seed(seed: int, stream: int, round_: int, cid: int) -> int:
    """A client's shuffling seed for one round of ``stream``; retraining replays TRAINING exactly."""
    return int(np.random.SeedSequence([seed, int(stream), round_, cid]).generate_state(1)[0])


def torch_seed(seed: int, stream: int) -> int:
    """A seed for a ``torch.Generator`` of ``stream``."""
    return int(np.random.SeedSequence([seed, int(stream)]).generate_state(1)[0])
