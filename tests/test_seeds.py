"""Random streams: unique values, the run's own and those the methods declare, and different draws for each."""

import pytest

from fedunlearn.seeds import Stream, client_seed, declare, declared, rng, torch_seed
from fedunlearn.unlearning import discover


def test_every_stream_has_its_own_value() -> None:
    discover()
    streams = declared()
    assert {int(s) for s in Stream} <= set(streams)
    assert {"calibration", "gaussian noise", "pga ascent", "distillation", "leaving client", "crab selection"} <= set(
        streams.values()
    )
    assert len(set(streams.values())) == len(streams)  # one name per value


def test_a_value_another_stream_holds_is_refused() -> None:
    with pytest.raises(ValueError, match="random stream 0 is 'training'"):
        declare("my method's noise", 0)
    assert declare("calibration", 1) == 1  # the same stream declared again (FedEraser and Crab) is the same stream


def test_streams_give_different_draws() -> None:
    discover()
    values = list(declared())
    assert len({int(rng(0, v).integers(0, 2**62)) for v in values}) == len(values)
    assert len({client_seed(0, v, 1, 1) for v in values}) == len(values)
    assert len({torch_seed(0, v) for v in values}) == len(values)


def test_the_streams_results_depend_on_keep_their_values() -> None:
    from fedunlearn.unlearning.methods.federaser import CALIBRATION

    assert (Stream.TRAINING, CALIBRATION, Stream.BACKDOOR) == (0, 1, 7919)


def test_a_run_is_determined_by_its_seed(tmp_path) -> None:
    """The same seed gives the same rounds; another seed other rounds (data split, initial model, batches)."""
    from tests.conftest import TINY, make_config, run_in_process

    def losses(seed: int, name: str) -> list[float]:
        cfg = make_config(*TINY, "experiment=train_only", "fl.num_rounds=2", f"seed={seed}")
        return [r["test_loss"] for r in run_in_process(cfg, tmp_path / name)["training"]["rounds"]]

    first = losses(1, "a")
    assert losses(1, "b") == first
    assert losses(2, "c") != first
