"""Typed schema of a fedunlearn run and its validation.

Each key's type and allowed values sit next to it (``spec(...)``); its value, default included, lives in the YAML
under ``conf/`` (every field here is ``MISSING``, so no default hides in code). ``validate`` checks every ``spec``
of the config (method parameters included) the same way, then the rules that tie keys together, one small
function per section (``RULES``). Unlearning methods add their own sections (``unlearning.<name>``) when they
register (``fedunlearn.unlearning.registry``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

DATASETS = ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10")
HF_DATASETS = ("mnist", "fashion_mnist", "cifar10")
MODELS = ("mlp", "cnn", "resnet18", "flnet")
TRIGGERS = ("square", "pattern")
PARTITIONS = ("iid", "dirichlet", "shards")
HISTORY_DTYPES = ("float32", "float16")
HISTORY_CODECS = ("none", "int8", "topk")
CLIENT_STATS = ("auto", "all", "none")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True)
class Check:
    """What a key allows: a closed or open interval, or one of a few names."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None

    def __call__(self, key: str, value: Any) -> None:
        if self.choices is not None:
            if value not in self.choices:
                raise ConfigError(key, f"unknown value {value!r}; allowed: {', '.join(self.choices)}")
            return
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if low_ok and high_ok:
            return
        if self.high is None and not self.low_open:
            raise ConfigError(key, f"must be >= {self.low}, got {value}")
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        high = math.inf if self.high is None else self.high
        raise ConfigError(key, f"must be in {left}{self.low}, {high}{right}, got {value}")


def spec(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A schema field without a default (the YAML gives it) that allows what the arguments say;
    ``None`` is always allowed for an optional (``X | None``) field."""
    check = Check(
        low=gt if gt is not None else ge,
        high=lt if lt is not None else le,
        low_open=gt is not None,
        high_open=lt is not None,
        choices=choices,
    )
    return field(default=MISSING, metadata={"check": check})


@dataclass
class DatasetConfig:
    name: str = spec(choices=DATASETS)
    root: str | None = MISSING  # mnist, fashion_mnist, cifar10: the folder of their standard files
    hf_path: str | None = MISSING  # Hugging Face dataset id or local directory (instead of root)
    image_key: str | None = MISSING
    label_key: str | None = MISSING
    test_fraction: float | None = spec(gt=0.0, le=0.9)  # digits/synthetic: share held out
    num_samples: int | None = spec(ge=2)  # synthetic
    num_classes: int | None = spec(ge=2)  # synthetic
    shape: list[int] | None = MISSING  # synthetic: [F] flat or [C, H, W] image
    class_sep: float | None = spec(gt=0.0)  # synthetic: distance between class means
    max_train_samples: int | None = spec(ge=1)
    max_test_samples: int | None = spec(ge=1)
    server_samples: int = spec(ge=0)  # unlabeled server-held samples, taken out of the held-out set
    normalize: list[float] | None = MISSING  # [mean, std] applied to every input value; null: as loaded ([0, 1])


@dataclass
class OptimizerConfig:
    lr: float = spec(gt=0.0)
    momentum: float = spec(ge=0.0, lt=1.0)


@dataclass
class ModelConfig:
    name: str = spec(choices=MODELS)
    hidden: int = spec(ge=1)  # mlp: hidden units; cnn: channels of the first conv; flnet: units of the fc layer
    padding: list[int] | None = MISSING  # flnet: padding of its two 5x5 convs ([2, 2] IBM's FLNet, [0, 0] Crab's)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)  # this model's stable local SGD


@dataclass
class PartitionConfig:
    name: str = spec(choices=PARTITIONS)
    alpha: float | None = spec(gt=0.0)  # dirichlet: concentration
    min_partition_size: int | None = spec(ge=0)  # dirichlet: redraw until every client has this many
    shards_per_client: int | None = spec(ge=1)  # shards


@dataclass
class FLConfig:
    num_clients: int = spec(ge=1)
    num_rounds: int = spec(ge=1)
    local_epochs: int = spec(ge=1)
    batch_size: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    momentum: float = spec(ge=0.0, le=1.0)
    optimizer: str = spec(choices=("sgd", "adam"))  # local training's optimizer (a fresh state every round)
    fraction_train: float = spec(gt=0.0, le=1.0)
    dropout_rate: float = spec(ge=0.0, lt=1.0)  # simulated: a sampled client fails in a round
    max_client_failures: int = spec(ge=0)  # ClientApp crashes tolerated per round; one more stops the run
    exact_reference: bool = MISSING  # a crash while retrain/rollback trains stops the run (false: tolerated, inexact)
    on_divergence: str = spec(choices=("warn", "error"))


@dataclass
class HistoryConfig:
    record: bool = MISSING  # false: plain FedAvg, nothing stored (no unlearning possible)
    interval: int = spec(ge=1)
    dtype: str = spec(choices=HISTORY_DTYPES)
    codec: str = spec(choices=HISTORY_CODECS)  # how client updates are stored: none | int8 | topk
    int8_block: int = spec(ge=1)  # codec int8: values sharing one scale
    topk_fraction: float = spec(gt=0.0, le=1.0)  # codec topk: share of each tensor's values kept
    dir: str = MISSING
    client_stats: str = spec(choices=CLIENT_STATS)  # per-client scalars of each round for methods that select


@dataclass
class RayConfig:
    address: str | None = MISSING  # null: a private local Ray; "auto" or host:port: join a cluster
    num_cpus: int | None = spec(ge=1)  # local Ray only; null: all cores
    num_gpus: int | None = spec(ge=0)  # local Ray only; logical GPUs to declare, null: detect
    num_cpus_per_client: float = spec(gt=0.0)
    num_gpus_per_client: float = spec(ge=0.0)
    include_dashboard: bool = MISSING
    connect_timeout_s: float = spec(gt=0.0)
    pack_clients: bool = MISSING  # a round's clients as one message per actor (same updates, fewer round trips)
    packs_per_actor: int = spec(ge=1)  # pack_clients: packs per actor and round (more: finer balance, more trips)


TRACKERS = ("none", "mlflow", "tensorboard", "wandb")


@dataclass
class TrackingConfig:
    backend: str = spec(choices=TRACKERS)  # none | mlflow | tensorboard | wandb (optional extras)
    experiment: str = MISSING  # MLflow experiment / W&B project name
    uri: str | None = MISSING  # MLflow tracking URI; null: sqlite:///<run dir>/mlflow.db (no server)


@dataclass
class CertificateConfig:
    sign: bool = MISSING  # sign each certificate with the deployment's Ed25519 key
    key_dir: str = MISSING  # where that key lives: outside every run directory


@dataclass
class BackdoorConfig:
    clients: list[int] = MISSING
    fraction: float = spec(ge=0.0, le=1.0)
    target_label: int = spec(ge=0)
    trigger_size: int = spec(ge=1)  # side of the square trigger in the bottom-right corner
    trigger: str = spec(choices=TRIGGERS)  # square | pattern (ART's add_pattern_bd: 4 pixels near the corner)
    skip_target: bool = MISSING  # true: only samples whose label is not the target are poisoned (PGA's, Crab's code)


@dataclass
class ForgetRequestConfig:
    round: int = MISSING  # the request arrives after this training round
    clients: list[int] = MISSING


@dataclass
class ForgetConfig:
    clients: list[int] = MISSING  # unlearned once, after training
    schedule: list[ForgetRequestConfig] = MISSING  # or: sequential requests while training goes on


@dataclass
class UnlearningConfig:
    """``methods`` and, added by the registry, one ``unlearning.<name>`` section per method."""

    methods: Any = MISSING  # list of method names, or "all"


@dataclass
class EvaluationConfig:
    batch_size: int = spec(ge=1)
    curves: bool = MISSING  # evaluate every step of every method (per-round curves); false: each method's result only
    device: str = spec(choices=("cpu", "cuda"))  # where the server's evaluations run (cuda: the driver's GPU)
    references: int = spec(ge=0)  # K in and K out reference federations for LiRA and the retrain z (0: none)
    references_cache: str = MISSING  # where reference models are kept, by setting, across runs


PROGRESS_MODES = ("auto", "bars", "lines")


@dataclass
class Config:
    seed: int = MISSING
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    fl: FLConfig = field(default_factory=FLConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    backdoor: BackdoorConfig = field(default_factory=BackdoorConfig)
    forget: ForgetConfig = field(default_factory=ForgetConfig)
    unlearning: UnlearningConfig = field(default_factory=UnlearningConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    certificate: CertificateConfig = field(default_factory=CertificateConfig)
    experiment: str = MISSING
    resume: bool = MISSING
    progress: str = spec(choices=PROGRESS_MODES)  # the console: bars on a terminal (auto), bars, or round lines


# -- checks ------------------------------------------------------------------------------------------


def checked_fields(node: Any, prefix: str = "") -> Iterator[tuple[str, Any, Check]]:
    """(key, value, check) of every ``spec`` field under ``node``, nested sections included."""
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            yield from checked_fields(value, f"{key}.")
        elif "check" in f.metadata and value is not None:
            yield key, value, f.metadata["check"]


def method_names(cfg: Config, registered: tuple[str, ...]) -> list[str]:
    """The unlearning methods a run applies, in order; ``all`` expands to every registered one."""
    methods = cfg.unlearning.methods
    if isinstance(methods, str):
        methods = list(registered) if methods == "all" else [methods]
    names = [str(m) for m in methods]
    for name in names:
        Check(choices=(*registered, "all"))("unlearning.methods", name)
    if len(set(names)) != len(names):
        raise ConfigError("unlearning.methods", f"methods repeat: {names}")
    return names


def departed_clients(cfg: Config) -> list[int]:
    """Every client forgotten by the run: ``forget.clients`` or all of ``forget.schedule``'s."""
    return sorted({*cfg.forget.clients, *(c for r in cfg.forget.schedule for c in r.clients)})


def _client_ids(key: str, ids: list[int], num_clients: int) -> None:
    for cid in ids:
        if not 0 <= cid < num_clients:
            raise ConfigError(key, f"client id {cid} does not exist; ids are 0..{num_clients - 1} (fl.num_clients)")
    if len(set(ids)) != len(ids):
        raise ConfigError(key, f"client ids repeat: {list(ids)}")


def _only_for(section: str, node: Any, owner: str, keys: dict[str, tuple[str, ...]]) -> None:
    """Each key in ``keys`` is required by the listed ``owner`` values and must be null for the others."""
    for key, owners in keys.items():
        value = getattr(node, key)
        if owner in owners and value is None:
            raise ConfigError(f"{section}.{key}", f"required for {section}={owner}")
        if owner not in owners and value is not None:
            raise ConfigError(
                f"{section}.{key}", f"only used by {section}={'|'.join(owners)} (this run has {section}={owner})"
            )


def _dataset(cfg: Config, methods: list[str]) -> None:
    d = cfg.dataset
    hf = HF_DATASETS
    _only_for(
        "dataset",
        d,
        d.name,
        {
            "root": hf,
            "image_key": hf,
            "label_key": hf,
            "test_fraction": ("digits", "synthetic"),
            "num_samples": ("synthetic",),
            "num_classes": ("synthetic",),
            "shape": ("synthetic",),
            "class_sep": ("synthetic",),
        },
    )
    if d.hf_path is not None and d.name not in hf:
        raise ConfigError("dataset.hf_path", f"only used by dataset={'|'.join(hf)} (this run has dataset={d.name})")
    if d.shape is not None and (len(d.shape) not in (1, 3) or min(d.shape) < 1):
        raise ConfigError("dataset.shape", f"must be [features] or [C, H, W], got {list(d.shape)}")
    if d.normalize is not None and (len(d.normalize) != 2 or not d.normalize[1] > 0):
        raise ConfigError("dataset.normalize", f"must be [mean, std] with std > 0, got {list(d.normalize)}")


def _optimizer(cfg: Config, methods: list[str]) -> None:
    if cfg.fl.optimizer == "adam" and cfg.fl.momentum != 0:
        raise ConfigError("fl.momentum", f"must be 0 with fl.optimizer=adam (Adam keeps its own moments), got "
                          f"{cfg.fl.momentum}")  # fmt: skip


def _model(cfg: Config, methods: list[str]) -> None:
    m = cfg.model
    _only_for("model", m, m.name, {"padding": ("flnet",)})
    if m.padding is not None and (len(m.padding) != 2 or min(m.padding) < 0):
        raise ConfigError("model.padding", f"must be [p1, p2] (one per conv), each >= 0, got {list(m.padding)}")


def _partition(cfg: Config, methods: list[str]) -> None:
    p = cfg.partition
    _only_for(
        "partition",
        p,
        p.name,
        {"alpha": ("dirichlet",), "min_partition_size": ("dirichlet",), "shards_per_client": ("shards",)},
    )


def _ray(cfg: Config, methods: list[str]) -> None:
    r = cfg.ray
    if r.address is not None:
        for key in ("num_cpus", "num_gpus"):
            if getattr(r, key) is not None:
                raise ConfigError(
                    f"ray.{key}",
                    f"only for a local Ray (ray.address: null); the cluster at ray.address={r.address} declares "
                    "its own resources (set it to null)",
                )
    if r.num_cpus is not None and r.num_cpus_per_client > r.num_cpus:
        raise ConfigError("ray.num_cpus_per_client", f"{r.num_cpus_per_client} is more than ray.num_cpus={r.num_cpus}")
    if r.num_gpus is not None and r.num_gpus_per_client > r.num_gpus:
        raise ConfigError(
            "ray.num_gpus_per_client",
            f"{r.num_gpus_per_client} is more than ray.num_gpus={r.num_gpus}"
            + (" (ray.num_gpus=N declares N logical GPUs, also on a CPU-only machine)" if r.num_gpus == 0 else ""),
        )


def _clients(cfg: Config, methods: list[str]) -> None:
    k = cfg.fl.num_clients
    _client_ids("backdoor.clients", list(cfg.backdoor.clients), k)
    _client_ids("forget.clients", list(cfg.forget.clients), k)
    if len(cfg.forget.clients) >= k:
        raise ConfigError("forget.clients", "at least one client must remain after forgetting")


def _requests(cfg: Config, methods: list[str]) -> None:
    forgets = bool(cfg.forget.clients or cfg.forget.schedule)
    if not cfg.history.record and (methods or forgets):
        raise ConfigError("history.record", "unlearning needs the history: set history.record=true")
    if cfg.forget.schedule:
        _schedule(cfg, methods)
    elif methods and not cfg.forget.clients:
        raise ConfigError("forget.clients", "unlearning.methods is set but no client is forgotten")
    elif cfg.forget.clients and not methods:
        raise ConfigError(
            "unlearning.methods", f"forget.clients={list(cfg.forget.clients)} but no method is given to forget them"
        )


def _schedule(cfg: Config, methods: list[str]) -> None:
    if cfg.forget.clients:
        raise ConfigError("forget.schedule", "use forget.clients or forget.schedule, not both (set forget.clients=[])")
    if cfg.evaluation.references:
        raise ConfigError(
            "evaluation.references",
            "reference models are trained for a one-shot request (forget.clients), not for forget.schedule: set 0",
        )
    if len(methods) != 1 or methods[0] == "retrain":
        raise ConfigError(
            "unlearning.methods",
            f"forget.schedule needs exactly one method other than retrain (the run ends with retrain as the "
            f"reference), got {methods}",
        )
    previous = 0
    for i, request in enumerate(cfg.forget.schedule):
        key = f"forget.schedule[{i}]"
        if request.round == previous:
            raise ConfigError(f"{key}.round", f"round {request.round} appears twice; merge the two requests' clients")
        if not previous < request.round <= cfg.fl.num_rounds:
            raise ConfigError(
                f"{key}.round",
                f"must be in ({previous}, {cfg.fl.num_rounds}] (after the previous request, within fl.num_rounds), "
                f"got {request.round}",
            )
        if not request.clients:
            raise ConfigError(f"{key}.clients", "must name at least one client")
        _client_ids(f"{key}.clients", list(request.clients), cfg.fl.num_clients)
        previous = request.round
    everyone = [c for r in cfg.forget.schedule for c in r.clients]
    if len(set(everyone)) != len(everyone):
        raise ConfigError("forget.schedule", f"a client leaves more than once: {everyone}")
    if len(everyone) >= cfg.fl.num_clients:
        raise ConfigError("forget.schedule", "at least one client must remain after forgetting")


Rule = Callable[[Config, list[str]], None]
RULES: tuple[Rule, ...] = (_dataset, _model, _optimizer, _partition, _ray, _clients, _requests)


def validate(cfg: Config, registered_methods: tuple[str, ...], method_rules: Callable[[str], Rule]) -> list[str]:
    """Check every key's ``spec``, then the cross-key rules, then each applied method's own rules; raise
    ConfigError naming the first bad key. Returns the methods the run applies."""
    for key, value, check in checked_fields(cfg):
        check(key, value)
    methods = method_names(cfg, registered_methods)
    for rule in RULES:
        rule(cfg, methods)
    for name in methods:
        method_rules(name)(cfg, methods)
    return methods
