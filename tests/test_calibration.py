import numpy as np
import pytest

from fedunlearn.unlearning.calibration import calibrate_client, calibrate_layers, calibrated_step, rescale


def v(*xs: float) -> dict[str, np.ndarray]:
    return {"a": np.array(xs[:2], np.float32), "b": np.array(xs[2:], np.float32)}


def test_rescale() -> None:
    np.testing.assert_allclose(rescale(np.array([0.0, 2.0]), 5.0), [0.0, 5.0])
    np.testing.assert_array_equal(rescale(np.zeros(3), 5.0), np.zeros(3))


def test_client_calibration_keeps_old_norm_new_direction() -> None:
    old = v(3.0, 0.0, 4.0)  # ‖old‖ = 5
    new = v(0.0, 1.0, 0.0)  # direction e2
    np.testing.assert_allclose(calibrate_client(old, new)["a"], [0.0, 5.0])
    np.testing.assert_allclose(calibrate_client(old, new)["b"], [0.0])


def test_layer_calibration_is_per_array() -> None:
    old = v(3.0, 4.0, 2.0)  # ‖a‖ = 5, ‖b‖ = 2
    new = v(1.0, 0.0, -0.5)
    out = calibrate_layers(old, new)
    np.testing.assert_allclose(out["a"], [5.0, 0.0])
    np.testing.assert_allclose(out["b"], [-2.0])


def test_calibrated_step_client_granularity() -> None:
    old = [v(3.0, 4.0, 0.0), v(0.0, 0.0, 2.0)]  # norms 5 and 2
    new = [v(1.0, 0.0, 0.0), v(0.0, 3.0, 0.0)]
    # Ũ_1 = [5, 0 | 0], Ũ_2 = [0, 2 | 0]; p' = (0.5, 0.5) → [2.5, 1 | 0]
    step = calibrated_step(old, new, [0.5, 0.5], "client")
    np.testing.assert_allclose(step["a"], [2.5, 1.0])
    np.testing.assert_allclose(step["b"], [0.0])


def test_calibrated_step_layer_granularity() -> None:
    old = [v(3.0, 4.0, 0.0), v(3.0, 4.0, 2.0)]  # mean a = [3, 4] (norm 5), mean b = [1]
    new = [v(1.0, 0.0, 0.0), v(1.0, 0.0, -4.0)]  # mean a = [1, 0], mean b = [-2]
    step = calibrated_step(old, new, [0.5, 0.5], "layer")
    np.testing.assert_allclose(step["a"], [5.0, 0.0])
    np.testing.assert_allclose(step["b"], [-1.0])
    with pytest.raises(ValueError):
        calibrated_step(old, new, [0.5, 0.5], "model")


def test_layer_granularity_weights_clients_equally_or_by_samples() -> None:
    old = [v(3.0, 0.0, 1.0), v(0.0, 0.0, 1.0)]
    new = [v(1.0, 0.0, 1.0), v(0.0, 2.0, 1.0)]
    # equal weights (the authors' code): mean old a = [1.5, 0] (norm 1.5), mean new a = [0.5, 1] → 1.5·[.5, 1]/√1.25
    equal = calibrated_step(old, new, [0.75, 0.25], "layer", "equal")
    np.testing.assert_allclose(equal["a"], 1.5 * np.array([0.5, 1.0]) / np.sqrt(1.25), rtol=1e-6)
    # sample weights .75/.25: mean old a = [2.25, 0], mean new a = [.75, .5] → 2.25·[.75, .5]/√.8125
    samples = calibrated_step(old, new, [0.75, 0.25], "layer", "samples")
    np.testing.assert_allclose(samples["a"], 2.25 * np.array([0.75, 0.5]) / np.sqrt(0.8125), rtol=1e-6)
    np.testing.assert_allclose(equal["b"], [1.0]) and np.testing.assert_allclose(samples["b"], [1.0])


@pytest.mark.parametrize("granularity", ["client", "layer"])
def test_a_step_streams_over_a_rounds_stored_updates(granularity: str) -> None:
    """A round's stored updates are read as they are used: a calibrated step never holds more than the update being
    added and the next one being read, and equals the step over the same updates in memory."""
    import weakref

    from fedunlearn.unlearning.replay import LazyUpdates

    rng = np.random.default_rng(0)
    stored = {c: v(*rng.normal(size=3)) for c in range(8)}
    new = [v(*rng.normal(size=3)) for _ in stored]
    weights = list(rng.dirichlet(np.ones(len(stored))))
    alive, most = [0], [0]

    def read(cid: int) -> dict[str, np.ndarray]:
        copy = {k: a.copy() for k, a in stored[cid].items()}
        alive[0] += 1
        most[0] = max(most[0], alive[0])
        weakref.finalize(copy["a"], lambda: alive.__setitem__(0, alive[0] - 1))
        return copy

    lazy = LazyUpdates(list(stored), read)
    streamed = calibrated_step(lazy, iter(new), weights, granularity)
    in_memory = calibrated_step(list(stored.values()), new, weights, granularity)
    for k in in_memory:
        np.testing.assert_array_equal(streamed[k], in_memory[k])
    assert most[0] <= 2
