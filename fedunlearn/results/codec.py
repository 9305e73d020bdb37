"""One codec between dataclasses and JSON, for results.json and the checkpoint alike.

``encode`` writes a dataclass as an object of its fields, in field order; ``decode`` builds one back from its type
hints, giving a field the file lacks its default (or the type's empty value: a file from an older release still
loads). What differs from a plain field-for-field copy is said on the field, in its ``metadata``:

* ``json_name``: the key in the file (e.g. ``ClientFailure.cid`` is ``client``);
* ``json_skip``: not written (e.g. a traceback kept for the log file only);
* ``omit_none``: left out of the object when None (optional sections of results.json);
* ``number``: an integral float is written as an int (client-epochs, compute);
* ``wrap``: written as ``{wrap: value}`` (``before_unlearning: {metrics: ...}``);
* ``flatten``: a dataclass whose fields are written into the enclosing object (a request's method result).

A class lists read-only properties to write first in ``__json_properties__`` (``Compute.sge``; a float one as
``number`` does). Non-finite floats become null (JSON has no inf/nan).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

T = TypeVar("T")


def number(x: float) -> float | int:
    """An integral float as an int (client-epochs are fractional only where a method trains a share of an epoch)."""
    return int(x) if float(x).is_integer() else float(x)


def finite(value: Any) -> Any:
    """JSON has no inf/nan: they become null (a non-finite loss is also reported as training.diverged)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def _key(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("json_name", f.name))


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses, lists, dicts, numbers, strings, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("json_skip") or (item is None and f.metadata.get("omit_none")):
                continue
            data = encode(item)
            if f.metadata.get("number") and isinstance(data, int | float):
                data = number(data)
            if f.metadata.get("flatten"):
                out.update(data)
            elif "wrap" in f.metadata and item is not None:
                out[_key(f)] = {f.metadata["wrap"]: data}
            else:
                out[_key(f)] = data
        extra = {p: getattr(value, p) for p in getattr(value, "__json_properties__", ())}
        extra = {k: number(v) if isinstance(v, float) else encode(v) for k, v in extra.items()}
        return finite({**extra, **out})
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return finite(value)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _empty(tp: Any) -> Any:
    """What a field the file lacks (and without a default) becomes: None, 0, an empty container, an empty record."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType) and type(None) in get_args(tp):
        return None
    if origin is list or tp is list:
        return []
    if origin is dict or tp is dict:
        return {}
    if tp in (int, float):
        return tp()
    if tp is str:
        return ""
    if dataclasses.is_dataclass(tp):
        return _decode(tp, {})
    return None


def decode(tp: type[T], data: Any) -> T:
    """An instance of ``tp`` (a dataclass, or a type hint over dataclasses) from ``encode``'s data."""
    return cast(T, _decode(tp, data))


def _decode(tp: Any, data: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if data is None:
        return None
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _decode(inner[0], data) if len(inner) == 1 else data
    if origin is list:
        return [_decode(args[0], v) for v in data] if args else list(data)
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in data.items()} if args else dict(data)
    if origin is typing.Literal or tp is Any or not isinstance(tp, type):
        return data
    if issubclass(tp, list) and tp is not list:  # a typed list (RoundLog is a list[RoundRecord])
        base = next(b for b in getattr(tp, "__orig_bases__", ()) if get_origin(b) is list)
        return tp(_decode(base, data))
    if not dataclasses.is_dataclass(tp):
        return tp(data) if tp in (int, float, str, bool) and not isinstance(data, tp) else data
    hints, kwargs = _hints(tp), {}
    for f in dataclasses.fields(tp):
        if not f.init or f.metadata.get("json_skip"):
            continue
        key = _key(f)
        if f.metadata.get("flatten"):
            kwargs[f.name] = _decode(hints[f.name], data)
        elif key in data:
            raw = data[key]
            if "wrap" in f.metadata and raw is not None:
                raw = raw[f.metadata["wrap"]]
            kwargs[f.name] = _decode(hints[f.name], raw)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = _empty(hints[f.name])
    return tp(**kwargs)
