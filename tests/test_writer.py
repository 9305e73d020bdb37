"""BackgroundWriter: writes land in submission order, a failure stops later writes and reaches the caller, and
a HistoryStore/RunCheckpoint pair behind one writer reads back exactly what a synchronous one writes."""

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from fedunlearn.experiment.checkpoint import RunCheckpoint
from fedunlearn.history import HistoryStore
from fedunlearn.history import writer as writer_module
from fedunlearn.history.writer import BackgroundWriter, RunFileError
from tests.conftest import make_config


def test_writes_land_in_order_and_flush_waits_for_them(tmp_path: Path) -> None:
    with BackgroundWriter() as writer:
        for i in range(50):
            writer.write(tmp_path / "same.txt", str(i).encode())
            writer.write(tmp_path / "sub" / f"file{i}.txt", b"x" * i)
        writer.flush()
        assert (tmp_path / "same.txt").read_text() == "49"
        assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(f"file{i}.txt" for i in range(50))
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_failed_write_stops_later_ones_so_disk_holds_a_prefix(tmp_path: Path, monkeypatch) -> None:
    real = writer_module.atomic_write
    calls: list[str] = []
    release = threading.Event()

    def failing(path: Path, payload: bytes) -> None:
        release.wait()
        calls.append(path.name)
        if path.name == "4":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload)

    monkeypatch.setattr(writer_module, "atomic_write", failing)
    writer = BackgroundWriter()
    for i in range(8):
        writer.write(tmp_path / str(i), b"data")
    release.set()
    with pytest.raises(RunFileError, match=f"cannot write {tmp_path / '4'}: No space left on device"):
        writer.flush()
    assert calls == ["0", "1", "2", "3", "4"]  # nothing after the failure was attempted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0", "1", "2", "3"]
    with pytest.raises(OSError):
        writer.write(tmp_path / "late", b"data")
    with pytest.raises(OSError):
        writer.close()


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "state.json"
    writer_module.atomic_write(target, b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_module.os, "fsync", full)
    with pytest.raises(RunFileError) as caught:
        writer_module.atomic_write(target, b"new")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_leaving_on_an_error_lands_queued_writes_and_keeps_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="the run's own error"), BackgroundWriter() as writer:
        writer.write(tmp_path / "queued.txt", b"kept")
        raise ValueError("the run's own error")
    assert (tmp_path / "queued.txt").read_bytes() == b"kept"


def _record(store: HistoryStore, ckpt: RunCheckpoint, rounds: int) -> None:
    for t in range(1, rounds + 1):
        g = {"w": np.full((4, 3), float(t), np.float32)}
        updates = {c: {"w": np.full((4, 3), 0.1 * (c + 1), np.float32)} for c in (0, 2)}
        store.record_round(t, g, updates, {0: 5, 2: 7})
        ckpt.save_training({"round": t}, g)


def test_history_and_checkpoint_behind_one_writer_read_back_like_synchronous_ones(tmp_path: Path) -> None:
    sync_store, sync_ckpt = HistoryStore(tmp_path / "sync" / "history"), RunCheckpoint(tmp_path / "sync", make_config())
    _record(sync_store, sync_ckpt, 3)
    with BackgroundWriter() as writer:
        store = HistoryStore(tmp_path / "bg" / "history", writer=writer)
        ckpt = RunCheckpoint(tmp_path / "bg", make_config(), writer)
        _record(store, ckpt, 3)
        # reads flush the writer first, so they see every round just recorded
        np.testing.assert_array_equal(store.client_update(3, 2)["w"], sync_store.client_update(3, 2)["w"])
        saved = ckpt.training()
        assert saved is not None and saved[0]["round"] == 3
        store.verify()
    for sync_file in (tmp_path / "sync").rglob("*.safetensors"):
        assert (tmp_path / "bg" / sync_file.relative_to(tmp_path / "sync")).read_bytes() == sync_file.read_bytes()
    reopened = HistoryStore.open(tmp_path / "bg" / "history")
    assert reopened.rounds() == [1, 2, 3] and reopened.participants(2) == [0, 2]


def test_pending_payload_stays_under_its_byte_bound(tmp_path: Path, monkeypatch) -> None:
    """Large models: the caller waits instead of queueing a whole round's files in memory; a payload larger than
    the bound still goes through on its own."""
    real = writer_module.atomic_write
    pending: list[int] = []

    def slow(path: Path, payload: bytes) -> None:
        pending.append(writer._pending_bytes)
        real(path, payload)

    monkeypatch.setattr(writer_module, "atomic_write", slow)
    with BackgroundWriter(max_pending_bytes=3000) as writer:
        for i in range(20):
            writer.write(tmp_path / f"{i}.bin", b"x" * 1000)
        writer.write(tmp_path / "big.bin", b"x" * 5000)
    assert max(pending) <= 5000 and max(pending[:20]) <= 3000
    assert (tmp_path / "big.bin").stat().st_size == 5000 and len(list(tmp_path.glob("*.bin"))) == 21
