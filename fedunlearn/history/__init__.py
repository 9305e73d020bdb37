"""Per-round training history on disk: global models and client updates."""

from fedunlearn.history.store import HistoryCorruptError, HistoryStore

__all__ = ["HistoryCorruptError", "HistoryStore"]
