import numpy as np
import pytest

from fedunlearn.core.fedavg import fedavg, sample_clients
from fedunlearn.core.federation import Replies
from fedunlearn.core.params import add, flatten, sample_weights, subtract, unflatten, weighted_sum
from fedunlearn.core.task import ClientUpdate


def p(w: list[float], b: list[float]) -> dict[str, np.ndarray]:
    return {"w": np.array(w, dtype=np.float32), "b": np.array(b, dtype=np.float32)}


def test_fedavg_weights_updates_by_sample_count() -> None:
    g = p([1.0, 1.0], [0.0])
    updates = [ClientUpdate(0, p([3.0, 1.0], [1.0]), 30, 1, 0.0), ClientUpdate(5, p([1.0, 5.0], [-1.0]), 10, 1, 0.0)]
    new, deltas = fedavg(g, Replies(updates))
    # U_0 = [2, 0 | 1], U_5 = [0, 4 | -1]; p = 0.75, 0.25 → step [1.5, 1 | 0.5]
    np.testing.assert_allclose(deltas[0]["w"], [2.0, 0.0])
    np.testing.assert_allclose(deltas[5]["b"], [-1.0])
    np.testing.assert_allclose(new["w"], [2.5, 2.0])
    np.testing.assert_allclose(new["b"], [0.5])


def test_integer_buffers_are_not_updates() -> None:
    a = {"w": np.ones(2, np.float32), "n": np.array(3, np.int64)}
    b = {"w": np.zeros(2, np.float32), "n": np.array(1, np.int64)}
    delta = subtract(a, b)
    assert set(delta) == {"w"}
    assert add(b, delta)["n"] == 1


def test_flatten_is_independent_of_key_order() -> None:
    x = {"b": np.array([3.0], np.float32), "a": np.array([[1.0, 2.0]], np.float32)}
    y = {"a": x["a"], "b": x["b"]}
    np.testing.assert_array_equal(flatten(x), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(flatten(x), flatten(y))
    back = unflatten(flatten(x), y)
    np.testing.assert_array_equal(back["a"], x["a"])
    with pytest.raises(ValueError):
        unflatten(np.zeros(4), y)


def test_weighted_sum_and_weights() -> None:
    assert sample_weights([1, 3]) == [0.25, 0.75]
    s = weighted_sum([p([4.0], [0.0]), p([0.0], [8.0])], [0.25, 0.75])
    np.testing.assert_allclose(s["w"], [1.0])
    np.testing.assert_allclose(s["b"], [6.0])


def test_sample_clients_is_seeded_and_sized() -> None:
    a = sample_clients(list(range(100)), 0.1, np.random.default_rng([3, 1]))
    b = sample_clients(list(range(100)), 0.1, np.random.default_rng([3, 1]))
    assert a == b and len(a) == 10 and a == sorted(a)
    assert sample_clients([0, 1, 2], 1.0, np.random.default_rng(0)) == [0, 1, 2]
    assert len(sample_clients([0, 1, 2], 0.01, np.random.default_rng(0))) == 1
