"""Every metric and cost column, defined once (the rows are data, in catalog.toml): its results.json key, headers,
format, which direction is better, and whether it is forgetting evidence. The evaluator, the console summary, the
Markdown/LaTeX/CSV tables, the certificates, the plots and experiment tracking all derive from these lists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args

Better = Literal["higher", "lower", "retrain"]  # "retrain": the closer to the retrained model's value, the better


@dataclass(frozen=True)
class Column:
    key: str  # results.json name
    short: str  # console header
    label: str  # table header
    digits: int = 3
    better: Better | None = None
    evidence: bool = False  # shown in certificates as forgetting evidence
    console: bool = True  # a column of the console summary
    description: str = ""
    count: bool = False  # a count: shown without decimals when whole

    def __post_init__(self) -> None:
        if self.better is not None and self.better not in get_args(Better):
            raise ValueError(f"catalog.toml: {self.key}: better must be one of {get_args(Better)}, not {self.better!r}")

    def format(self, value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            if value == float("inf"):
                return "∞"
            if self.count and value.is_integer():
                return str(int(value))
            return f"{value:.{self.digits}f}"
        return str(value)


_ROWS = tomllib.loads(resources.files(__package__).joinpath("catalog.toml").read_text(encoding="utf-8"))
METRICS: tuple[Column, ...] = tuple(Column(**row) for row in _ROWS["metric"])
COSTS: tuple[Column, ...] = tuple(Column(**row) for row in _ROWS["cost"])
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
EVIDENCE: tuple[str, ...] = tuple(m.key for m in METRICS if m.evidence)
COLUMNS: tuple[Column, ...] = METRICS + COSTS


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)
