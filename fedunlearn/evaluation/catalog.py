"""Every metric and cost column, defined once: its results.json key, headers, format, which direction is better,
and whether it is forgetting evidence. The evaluator, the console summary, the Markdown/LaTeX/CSV tables, the
certificates and the plots all derive from these lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

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


METRICS: tuple[Column, ...] = (
    Column("test_accuracy", "test acc", "test acc", better="higher", evidence=True,
           description="accuracy on the clean global test set"),
    Column("test_loss", "test loss", "test loss", better="lower", console=False,
           description="mean cross-entropy on the clean global test set"),
    Column("remaining_accuracy", "remain acc", "remaining acc", better="higher",
           description="accuracy on the remaining clients' training data"),
    Column("forgotten_accuracy", "forgot acc", "forgotten acc", better="retrain", evidence=True,
           description="accuracy on the forgotten clients' training data exactly as they trained on it"),
    Column("forgotten_loss", "forgot loss", "forgotten loss", better="retrain", console=False,
           description="mean cross-entropy on the forgotten clients' training data"),
    Column("backdoor_asr", "ASR", "backdoor ASR", better="retrain", evidence=True,
           description="share of triggered test inputs (true label ≠ target) classified as the target; null without "
           "a backdoor"),
    Column("mia_auc", "MIA AUC", "MIA AUC", better="retrain", evidence=True,
           description="loss-threshold membership inference: AUC separating the forgotten clients' clean samples "
           "from the test set; 0.5 = no signal"),
    Column("l2_to_retrain", "L2→retrain", "L2 to retrain", better="lower", evidence=True,
           description="‖θ − θ_retrain‖₂"),
    Column("angle_to_retrain", "angle→retrain", "angle to retrain", better="lower", console=False,
           description="angle between the parameter vectors, in degrees"),
    Column("kl_to_retrain", "KL→retrain", "KL to retrain", better="lower", console=False,
           description="mean KL(P_retrain ‖ P) of predictions on the forgotten clients' data (nats)"),
    Column("js_to_retrain", "JS→retrain", "JS to retrain", better="lower", evidence=True,
           description="mean Jensen–Shannon divergence of predictions on the forgotten clients' data (nats)"),
    Column("kl_to_retrain_test", "KL→retrain test", "KL to retrain (test)", better="lower", console=False,
           description="the same KL on the test set"),
    Column("js_to_retrain_test", "JS→retrain test", "JS to retrain (test)", better="lower", console=False,
           description="the same JS on the test set"),
)  # fmt: skip

COSTS: tuple[Column, ...] = (
    Column("wall_s", "wall s", "wall s", digits=1, better="lower", description="wall seconds"),
    Column("client_epochs", "client ep", "client-epochs", digits=1, better="lower", count=True,
           description="epochs of local SGD summed over clients"),
    Column("rounds", "rounds", "rounds", better="lower", count=True,
           description="federated rounds (messages to clients)"),
    Column("megabytes", "MB", "MB exchanged", digits=2, better="lower",
           description="model bytes sent to and from the clients, in 10⁶ bytes"),
    Column("speedup_epochs", "speedup ep", "speed-up (epochs)", digits=2, better="higher",
           description="retrain's client-epochs / the method's (∞: trains no client)"),
    Column("speedup_wall", "speedup wall", "speed-up (wall)", digits=2, better="higher",
           description="retrain's wall seconds / the method's"),
    Column("speedup_bytes", "speedup MB", "speed-up (bytes)", digits=2, better="higher", console=False,
           description="retrain's bytes exchanged / the method's (∞: exchanges none)"),
)  # fmt: skip

METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
EVIDENCE: tuple[str, ...] = tuple(m.key for m in METRICS if m.evidence)
COLUMNS: tuple[Column, ...] = METRICS + COSTS


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)
