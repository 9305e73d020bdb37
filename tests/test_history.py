import json

import numpy as np
import pytest

from fedunlearn.history import HistoryCorruptError, HistoryStore

SHAPES = {"layer.weight": (6, 5), "layer.bias": (6,)}  # 36 parameters
NUM_PARAMS = 36


def params(value: float) -> dict[str, np.ndarray]:
    return {k: np.full(s, value, np.float32) for k, s in SHAPES.items()}


def fill(store: HistoryStore, rounds: int, clients: list[int]) -> None:
    for t in range(1, rounds + 1):
        g = params(float(t))
        client_models = {c: params(t + 0.5 * (c + 1)) for c in clients}
        deltas = {c: {k: client_models[c][k] - g[k] for k in g} for c in clients}
        store.record_round(t, g, deltas, {c: 10 * (c + 1) for c in clients})


def test_updates_are_client_minus_round_start_model(tmp_path) -> None:
    store = HistoryStore(tmp_path, interval=1)
    fill(store, 2, [0, 3])
    # client 3 in round 2: w = 2 + 0.5*4 = 4, M^2 = 2 → U = 2
    np.testing.assert_allclose(store.client_update(2, 3)["layer.weight"], np.full((6, 5), 2.0))
    np.testing.assert_allclose(store.global_model(2)["layer.bias"], np.full(6, 2.0))
    assert store.participants(2) == [0, 3]
    assert store.num_examples(1, 3) == 40
    with pytest.raises(KeyError):
        store.client_update(1, 1)


def test_interval_keeps_every_nth_round_but_records_participants(tmp_path) -> None:
    store = HistoryStore(tmp_path, interval=2)
    fill(store, 5, [0, 1])
    assert store.rounds() == [1, 2, 3, 4, 5]
    assert store.rounds_stored() == [1, 3, 5]
    assert store.participants(4) == [0, 1]
    with pytest.raises(KeyError, match="not stored"):
        store.global_model(2)


@pytest.mark.parametrize("dtype,width", [("float32", 4), ("float16", 2)])
def test_bytes_follow_the_formula(tmp_path, dtype: str, width: int) -> None:
    rounds, clients = 6, [0, 1, 2]
    store = HistoryStore(tmp_path, interval=2, dtype=dtype)
    fill(store, rounds, clients)
    files = len(store.rounds_stored()) * (len(clients) + 1)
    payload = files * NUM_PARAMS * width
    header = store.total_bytes() - payload
    assert 0 < header <= files * 256  # safetensors JSON header per file
    assert store.total_bytes() == sum(p.stat().st_size for p in tmp_path.rglob("*.safetensors"))


def test_float16_halves_the_payload(tmp_path) -> None:
    a = HistoryStore(tmp_path / "a", dtype="float32")
    b = HistoryStore(tmp_path / "b", dtype="float16")
    fill(a, 3, [0, 1])
    fill(b, 3, [0, 1])
    files = 3 * 3
    assert a.total_bytes() - files * NUM_PARAMS * 4 == pytest.approx(b.total_bytes() - files * NUM_PARAMS * 2, abs=64)
    assert b.global_model(1)["layer.weight"].dtype == np.float32  # read back as float32


def test_float16_round_trip_rounds_as_numpy_does(tmp_path) -> None:
    """The store casts through torch (vectorised); the values are numpy's IEEE round-to-nearest-even ones,
    including the extremes (overflow to inf, subnormals, signed zero, nan)."""
    rng = np.random.default_rng(0)
    special = np.array([70000.0, -70000.0, 1e-6, -1e-7, 6e-8, 0.0, -0.0, np.inf, np.nan], np.float32)
    params = {"w": np.concatenate([rng.normal(0, 3, 10_000).astype(np.float32), special]), "n": np.array([3])}
    store = HistoryStore(tmp_path, 1, "float16")
    store.record_round(1, params, {0: params}, {0: 5})
    back = store.client_update(1, 0)
    with np.errstate(over="ignore"):  # 70000 overflows float16 to inf, as intended
        expected = params["w"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(back["w"], expected)
    assert back["w"].dtype == np.float32 and np.signbit(back["w"][-3]) and back["n"].tolist() == [3]


def test_reopen_and_first_round(tmp_path) -> None:
    store = HistoryStore(tmp_path)
    fill(store, 3, [2])
    again = HistoryStore.open(tmp_path)
    assert again.rounds() == [1, 2, 3]
    assert again.first_round_of([2]) == 1
    assert again.first_round_of([0]) is None


def test_corrupted_or_missing_files_are_detected(tmp_path) -> None:
    store = HistoryStore(tmp_path)
    fill(store, 2, [0, 1])
    path = tmp_path / "round_00002" / "client_00001.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryCorruptError, match="round 2, client 1"):
        store.client_update(2, 1)
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(HistoryCorruptError, match="round 2, client 1"):
        store.client_update(2, 1)
    (tmp_path / "round_00001" / "global.safetensors").unlink()
    with pytest.raises(HistoryCorruptError, match="missing"):
        store.global_model(1)
    assert store.client_update(1, 0)["layer.bias"][0] == pytest.approx(0.5)


def test_recording_off_stores_nothing_and_refuses_unlearning(tmp_path) -> None:
    from fedunlearn.config import ConfigError
    from tests.conftest import TINY, make_config, run_in_process

    with pytest.raises(ConfigError, match=r"history\.record: unlearning needs the history"):
        make_config(*TINY, "history.record=false")
    cfg = make_config(*TINY, "experiment=train_only", "history.record=false", "fl.num_rounds=2")
    results = run_in_process(cfg, tmp_path)
    assert results["history"]["bytes"] == 0 and results["history"]["rounds_stored"] == 0
    assert not list((tmp_path / "history").rglob("*.safetensors"))
    assert len(results["training"]["rounds"]) == 2


def test_recording_a_round_does_not_rewrite_the_manifest_and_a_reader_catches_up(tmp_path) -> None:
    store = HistoryStore(tmp_path, interval=1)
    header = (tmp_path / "manifest.json").read_bytes()
    fill(store, 3, [0, 2])
    assert (tmp_path / "manifest.json").read_bytes() == header  # O(clients) a round: files and one chain line
    reader = HistoryStore.open(tmp_path)  # a run stopped before its manifest was written
    assert reader.rounds() == [1, 2, 3] and reader.participants(3) == [0, 2] and reader.num_examples(2, 2) == 30
    reader.verify()
    np.testing.assert_allclose(reader.client_update(3, 2)["layer.bias"], np.full(6, 1.5))
    frozen = store.freeze_manifest("manifest-pinned.json")
    fill_more = {c: params(0.5) for c in (0, 2)}
    store.record_round(4, params(4.0), fill_more, {0: 10, 2: 30})
    assert HistoryStore.open(tmp_path, frozen.name).rounds() == [1, 2, 3]  # a pinned copy never grows
    store.sync()
    assert sorted(json.loads((tmp_path / "manifest.json").read_text())["rounds"], key=int) == ["1", "2", "3", "4"]
