"""Per-round training history on disk: global models and client updates."""

from fedunlearn.history.store import CLIENT_STATS, DISTANCE, RECEIVED_LOSS, HistoryCorruptError, HistoryStore

__all__ = ["CLIENT_STATS", "DISTANCE", "RECEIVED_LOSS", "HistoryCorruptError", "HistoryStore"]
