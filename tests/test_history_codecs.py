"""Stored-update codecs (``history.codec``): int8 per-block quantisation and top-k with error feedback, checked
against hand-computed values and an independent numpy oracle of error feedback; the store records the codec,
refuses a mismatch, and a resumed run continues with the residuals it had."""

import json

import numpy as np
import pytest

from fedunlearn.history import HistoryStore
from fedunlearn.history.codecs import Codec, int8_decode, int8_encode, topk_decode, topk_encode
from tests.conftest import TINY, make_config, run_in_process


def test_int8_scales_each_block_by_its_largest_magnitude() -> None:
    x = np.array([1.0, -0.5, 0.25, 0.0, 4.0, 2.0], np.float32)
    q, scales = int8_encode(x, block=4)
    np.testing.assert_array_equal(scales, [1.0, 4.0])
    np.testing.assert_array_equal(q, [127, -64, 32, 0, 127, 64])  # rint(127·x/s): 63.5 → 64, 31.75 → 32
    np.testing.assert_allclose(int8_decode(q, scales, 4), [1.0, -64 / 127, 32 / 127, 0.0, 4.0, 4 * 64 / 127])


def test_int8_error_is_at_most_half_a_step_and_zeros_stay_zero() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((7, 45)) * rng.uniform(0.01, 10, (7, 1))).astype(np.float32)
    x[3] = 0.0
    q, scales = int8_encode(x, block=16)
    back = int8_decode(q, scales, 16)
    step = np.repeat(scales, 16)[: x.size].reshape(x.shape) / 127
    assert np.all(np.abs(back - x) <= step / 2 + 1e-6)
    assert np.all(back[3] == 0.0) and back.shape == x.shape and back.dtype == np.float32


def test_topk_keeps_the_largest_magnitudes() -> None:
    x = np.array([[0.1, -3.0, 0.2], [2.0, 0.0, -0.3]], np.float32)
    idx, vals = topk_encode(x, fraction=2 / 6)
    np.testing.assert_array_equal(idx, [1, 3])
    np.testing.assert_array_equal(vals, [-3.0, 2.0])
    np.testing.assert_array_equal(topk_decode(idx, vals, x.shape), [[0, -3.0, 0], [2.0, 0, 0]])
    assert topk_encode(x, fraction=1e-9)[0].size == 1  # at least one value per tensor


def _oracle_error_feedback(updates: list[np.ndarray], k: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Stich et al.'s memory, written out: send the k largest of (update + memory), keep the rest as memory."""
    memory, sent = np.zeros_like(updates[0]), []
    for u in updates:
        target = u + memory
        keep = np.zeros(target.size, bool)
        keep[np.argsort(-np.abs(target.ravel()), kind="stable")[:k]] = True
        out = np.where(keep.reshape(target.shape), target, 0.0)
        sent.append(out)
        memory = target - out
    return sent, memory


def _record(store: HistoryStore, rounds: int, rng: np.random.Generator, clients: list[int]) -> dict:
    updates: dict = {}
    for t in range(1, rounds + 1):
        g = {"w": np.full((4, 5), float(t), np.float32), "b": np.zeros(5, np.float32)}
        ups = {c: {"w": rng.standard_normal((4, 5)).astype(np.float32), "b": rng.standard_normal(5).astype(np.float32)}
               for c in clients}  # fmt: skip
        updates[t] = ups
        store.record_round(t, g, ups, {c: 10 + 7 * c for c in clients})
    return updates


def test_stored_topk_updates_are_error_feedback_per_client(tmp_path) -> None:
    store = HistoryStore(tmp_path, codec=Codec("topk", topk_fraction=0.25))
    updates = _record(store, 4, np.random.default_rng(1), [0, 2])
    for c in (0, 2):
        for name, k in (("w", 5), ("b", 2)):  # ⌈0.25·20⌉, ⌈0.25·5⌉
            sent, memory = _oracle_error_feedback([updates[t][c][name] for t in range(1, 5)], k)
            for t in range(1, 5):
                np.testing.assert_allclose(store.client_update(t, c)[name], sent[t - 1], rtol=1e-6, atol=1e-7)
            stored_sum = sum(store.client_update(t, c)[name] for t in range(1, 5))
            np.testing.assert_allclose(stored_sum + memory, sum(updates[t][c][name] for t in range(1, 5)), atol=1e-5)


def test_int8_store_reads_back_within_a_step_and_records_the_codec(tmp_path) -> None:
    store = HistoryStore(tmp_path, codec=Codec("int8", int8_block=8))
    updates = _record(store, 2, np.random.default_rng(2), [1, 3])
    back = store.client_update(2, 3)["w"]
    assert back.dtype == np.float32
    assert np.abs(back - updates[2][3]["w"]).max() <= np.abs(updates[2][3]["w"]).max() / 127
    assert json.loads((tmp_path / "manifest.json").read_text())["codec"] == {"name": "int8", "block": 8}
    assert HistoryStore.open(tmp_path).codec == Codec("int8", int8_block=8)
    with pytest.raises(ValueError, match="codec"):
        HistoryStore(tmp_path)  # a history written with int8, reopened as none


def test_int8_and_topk_files_are_the_advertised_size(tmp_path) -> None:
    update = {"w": np.random.default_rng(4).standard_normal((64, 64)).astype(np.float32)}
    sizes = {}
    for name in ("none", "int8", "topk"):
        store = HistoryStore(tmp_path / name, codec=Codec(name, int8_block=256, topk_fraction=0.01))
        store.record_round(1, {"w": np.zeros((64, 64), np.float32)}, {0: update}, {0: 10})
        sizes[name] = (tmp_path / name / "round_00001" / "client_00000.safetensors").stat().st_size
    assert 3.5 < sizes["none"] / sizes["int8"] < 4  # 4096 values: 4096 B + 16 scales + header, against 16 KiB
    assert sizes["none"] / sizes["topk"] > 25  # 41 kept values: 8 B each, and the header


def test_a_resumed_topk_history_continues_with_the_residuals_it_had(tmp_path) -> None:
    whole = HistoryStore(tmp_path / "whole", codec=Codec("topk", topk_fraction=0.2))
    _record(whole, 3, np.random.default_rng(3), [0, 1])
    cut = HistoryStore(tmp_path / "cut", codec=Codec("topk", topk_fraction=0.2))
    rng = np.random.default_rng(3)
    _record(cut, 3, rng, [0, 1])
    cut.truncate(2)  # killed after recording round 3, before its checkpoint
    replay = np.random.default_rng(3)
    _record(HistoryStore(tmp_path / "scratch", codec=Codec("topk", topk_fraction=0.2)), 2, replay, [0, 1])
    g = {"w": np.full((4, 5), 3.0, np.float32), "b": np.zeros(5, np.float32)}
    ups = {}
    for c in (0, 1):
        ups[c] = {"w": replay.standard_normal((4, 5)).astype(np.float32)}
        ups[c]["b"] = replay.standard_normal(5).astype(np.float32)
    cut.record_round(3, g, ups, {0: 10, 1: 17})
    for c in (0, 1):
        assert (tmp_path / "cut" / "round_00003" / f"client_{c:05d}.safetensors").read_bytes() == (
            tmp_path / "whole" / "round_00003" / f"client_{c:05d}.safetensors"
        ).read_bytes()  # the same bytes: the same values, and no metadata in a process-dependent order


def test_a_run_with_a_compressed_history_unlearns_and_reports_its_codec(tmp_path) -> None:
    cfg = make_config(*TINY, "history.codec=topk", "history.topk_fraction=0.1", "backdoor.clients=[1]",
                      "forget.clients=[1]", "unlearning.methods=[federaser,kd]")  # fmt: skip
    results = run_in_process(cfg, tmp_path)
    assert results["history"]["codec"] == {"name": "topk", "fraction": 0.1, "error_feedback": True}
    assert set(results["unlearning"]) == {"federaser", "kd"}
    cert = json.loads((tmp_path / "certificate-1.json").read_text())
    assert cert["history_codec"] == results["history"]["codec"]
