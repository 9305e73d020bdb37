"""A faster message pick-up for Flower's simulation engine (flwr 1.41–1.42 ``vce_api``).

The engine's extractor thread (``add_messages_to_queue``) asks the link state, node by node, for each node's pending
message (``get_message_ins`` scans every stored message for every node), then sleeps 100 ms. A round therefore
waits 0–100 ms before any client starts, and one sweep costs O(nodes × messages): a latency every short round pays
(a FedEraser calibration step, a PUF round) and a cost that grows with the federation. ``picked_up_at_once`` swaps in
an extractor that makes one pass over the stored messages per sweep and wakes as soon as the ServerApp pushes
(``notify``), with the same effect on the state: each undelivered message is marked delivered and queued for its
node; and the injector that stores replies also wakes the ServerApp waiting for them (``wait_for_replies``) so that
it need not poll. It is used only when the installed Flower has the internals it was written against; otherwise
Flower's own extractor runs (and a line in the log says so). ``FEDUNLEARN_FLOWER_OWN=1`` forces Flower's own code
paths here and in the server's node discovery: ``tests/test_flwr_run.py`` requires identical results both ways.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from queue import Queue
from typing import Any

log = logging.getLogger(__name__)
FLOWER_OWN_ENV = "FEDUNLEARN_FLOWER_OWN"  # "1": Flower's own code paths, nothing of its internals read (tests)
_pushed = threading.Event()
_replied = threading.Event()
IDLE_WAIT_S = 0.1  # the engine's own sweep period, kept while nothing is pushed


def notify() -> None:
    """Wake the extractor: the ServerApp has just pushed messages."""
    _pushed.set()


def wait_for_replies(timeout: float) -> None:
    """Return when a reply has reached the link state since the last call (or after ``timeout``)."""
    _replied.wait(timeout)
    _replied.clear()


def _pending(state: Any, nodes: set[int]) -> list[Any]:
    """Undelivered messages for ``nodes``, marked delivered (what get_message_ins does, in one pass)."""
    from flwr.supercore.date import now

    with state.lock:
        found = [
            m
            for m in list(state.message_ins_store.values())
            if m.metadata.delivered_at == "" and m.metadata.dst_node_id in nodes
        ]
        stamp = now().isoformat()
        for m in found:
            m.metadata.delivered_at = stamp
    return found


def add_messages_to_queue(
    state: Any, queue: Queue[Any], nodes_mapping: dict[int, int], f_stop: threading.Event
) -> None:
    """Drop-in for ``vce_api.add_messages_to_queue``."""
    nodes = set(nodes_mapping)
    while not f_stop.is_set():
        _pushed.clear()
        for message in _pending(state, nodes):
            queue.put(message)
        _pushed.wait(IDLE_WAIT_S)


def put_message_into_state(state: Any, queue: Queue[Any], f_stop: threading.Event) -> None:
    """Drop-in for ``vce_api.put_message_into_state``: the same, and it wakes a waiting ServerApp."""
    from queue import Empty

    while not f_stop.is_set():
        try:
            reply = queue.get(timeout=1.0)
        except Empty:
            continue
        state.store_message_res(reply)
        _replied.set()


def flower_own() -> bool:
    """Whether ``FEDUNLEARN_FLOWER_OWN=1`` asks for Flower's own code paths (the test of the patches' equivalence)."""
    return os.environ.get(FLOWER_OWN_ENV, "") == "1"


def _compatible() -> bool:
    if flower_own():
        return False
    try:
        from flwr.server.superlink.fleet.vce import vce_api
        from flwr.server.superlink.linkstate.in_memory_linkstate import InMemoryLinkState
        from flwr.supercore.date import now  # noqa: F401
    except ImportError:
        return False
    probe = InMemoryLinkState.__init__.__code__.co_names
    names = ("add_messages_to_queue", "put_message_into_state")
    return all(hasattr(vce_api, n) for n in names) and "message_ins_store" in probe and "lock" in probe


@contextlib.contextmanager
def picked_up_at_once() -> Iterator[bool]:
    """Within the block, the simulation engine uses the one-pass, push-woken extractor (yields whether it could)."""
    if not _compatible():
        log.info("this Flower's simulation engine is not the one fedunlearn's message extractor knows; using Flower's")
        yield False
        return
    from flwr.server.superlink.fleet.vce import vce_api

    originals = vce_api.add_messages_to_queue, vce_api.put_message_into_state
    vce_api.add_messages_to_queue, vce_api.put_message_into_state = add_messages_to_queue, put_message_into_state
    try:
        yield True
    finally:
        vce_api.add_messages_to_queue, vce_api.put_message_into_state = originals
