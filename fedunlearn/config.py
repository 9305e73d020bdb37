"""Typed schema of a fedunlearn run and its validation.

The dataclasses give each key its type; the values, defaults included, live in the
YAML files under ``conf/`` (every field here is ``MISSING`` so no default hides in code).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

DATASETS = ("digits", "synthetic", "mnist", "fashion_mnist", "cifar10")
MODELS = ("mlp", "cnn")
PARTITIONS = ("iid", "dirichlet", "shards")
HISTORY_DTYPES = ("float32", "float16")
GRANULARITIES = ("client", "layer")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and what is allowed."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass
class DatasetConfig:
    name: str = MISSING
    hf_path: str | None = MISSING  # Hugging Face dataset id or local directory
    image_key: str | None = MISSING
    label_key: str | None = MISSING
    test_fraction: float | None = MISSING  # digits/synthetic: share held out as test set
    num_samples: int | None = MISSING  # synthetic only
    num_classes: int | None = MISSING  # synthetic only
    shape: list[int] | None = MISSING  # synthetic only: [F] flat or [C, H, W] image
    class_sep: float | None = MISSING  # synthetic only: distance between class means
    max_train_samples: int | None = MISSING
    max_test_samples: int | None = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    hidden: int = MISSING  # mlp: hidden units; cnn: channels of the first conv


@dataclass
class PartitionConfig:
    name: str = MISSING
    alpha: float = MISSING  # dirichlet concentration
    shards_per_client: int = MISSING  # shards partitioner
    min_partition_size: int = MISSING  # dirichlet: resample until every client has this many


@dataclass
class FLConfig:
    num_clients: int = MISSING
    num_rounds: int = MISSING
    local_epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    momentum: float = MISSING
    fraction_train: float = MISSING
    dropout_rate: float = MISSING  # chance that a sampled client fails in a round


@dataclass
class HistoryConfig:
    record: bool = MISSING  # false: plain FedAvg, nothing stored (no unlearning possible)
    interval: int = MISSING
    dtype: str = MISSING
    dir: str = MISSING


@dataclass
class RayConfig:
    address: str | None = MISSING  # null: start a local Ray; "auto" or host:port: join a cluster
    num_cpus: int | None = MISSING  # local Ray only; null: all cores
    num_gpus: int | None = MISSING  # local Ray only; logical GPUs to declare, null: detect
    num_cpus_per_client: float = MISSING
    num_gpus_per_client: float = MISSING


@dataclass
class BackdoorConfig:
    clients: list[int] = MISSING
    fraction: float = MISSING
    target_label: int = MISSING
    trigger_size: int = MISSING  # side of the square trigger in the bottom-right corner


@dataclass
class ForgetRequestConfig:
    round: int = MISSING  # the request arrives after this training round
    clients: list[int] = MISSING


@dataclass
class ForgetConfig:
    clients: list[int] = MISSING  # unlearned once, after training
    schedule: list[ForgetRequestConfig] = MISSING  # or: sequential requests while training goes on


@dataclass
class RetrainConfig:
    pass


@dataclass
class FedEraserConfig:
    calibration_ratio: float = MISSING
    interval: int = MISSING
    granularity: str = MISSING


@dataclass
class FedAccumConfig:
    interval: int = MISSING


@dataclass
class RollbackConfig:
    pass


@dataclass
class FinetuneConfig:
    rounds: int = MISSING


@dataclass
class FedRecoverConfig:
    warmup_rounds: int = MISSING  # T_w
    correction_period: int = MISSING  # T_c
    final_rounds: int = MISSING  # T_f
    buffer_size: int = MISSING  # s
    tau_quantile: float = MISSING
    tau_factor: float = MISSING


@dataclass
class PGAConfig:
    epochs: int = MISSING
    lr: float = MISSING
    clip: float = MISSING
    radius_fraction: float = MISSING
    random_models: int = MISSING
    stop_accuracy: float = MISSING
    post_rounds: int = MISSING


@dataclass
class FedRecoveryConfig:
    epsilon: float = MISSING
    beta: float = MISSING
    sensitivity_scale: float = MISSING


@dataclass
class KDConfig:
    server_samples: int = MISSING
    epochs: int = MISSING
    lr: float = MISSING
    temperature: float = MISSING
    batch_size: int = MISSING


@dataclass
class UnlearningConfig:
    methods: Any = MISSING  # list of method names, or "all"
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    federaser: FedEraserConfig = field(default_factory=FedEraserConfig)
    fedaccum: FedAccumConfig = field(default_factory=FedAccumConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    fedrecover: FedRecoverConfig = field(default_factory=FedRecoverConfig)
    pga: PGAConfig = field(default_factory=PGAConfig)
    fedrecovery: FedRecoveryConfig = field(default_factory=FedRecoveryConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


@dataclass
class EvaluationConfig:
    batch_size: int = MISSING


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
    experiment: str = MISSING
    resume: bool = MISSING


def register_configs() -> None:
    """Register the schema so that ``conf/config.yaml`` can extend it as ``base_config``."""
    ConfigStore.instance().store(name="base_config", node=Config)


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(key, f"unknown value {value!r}; allowed: {', '.join(allowed)}")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(key, f"must be >= {low}, got {value}")


def _in_range(key: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False) -> None:
    ok = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(key, f"must be in {left}{low}, {high}{right}, got {value}")


def _client_ids(key: str, ids: list[int], num_clients: int) -> None:
    for cid in ids:
        if not 0 <= cid < num_clients:
            raise ConfigError(key, f"client id {cid} does not exist; ids are 0..{num_clients - 1} (fl.num_clients)")
    if len(set(ids)) != len(ids):
        raise ConfigError(key, f"client ids repeat: {list(ids)}")


def method_names(cfg: Config, registered: tuple[str, ...]) -> list[str]:
    """The unlearning methods a run applies, in order; ``all`` expands to every registered one."""
    methods = cfg.unlearning.methods
    if isinstance(methods, str):
        methods = list(registered) if methods == "all" else [methods]
    names = [str(m) for m in methods]
    for name in names:
        _choice("unlearning.methods", name, (*registered, "all"))
    if len(set(names)) != len(names):
        raise ConfigError("unlearning.methods", f"methods repeat: {names}")
    return names


def departed_clients(cfg: Config) -> list[int]:
    """Every client forgotten by the run: ``forget.clients`` or all of ``forget.schedule``'s."""
    return sorted({*cfg.forget.clients, *(c for r in cfg.forget.schedule for c in r.clients)})


def _check_schedule(cfg: Config, methods: list[str]) -> None:
    if cfg.forget.clients:
        raise ConfigError("forget.schedule", "use forget.clients or forget.schedule, not both (set forget.clients=[])")
    if len(methods) != 1 or methods[0] in ("retrain", "all"):
        raise ConfigError(
            "unlearning.methods",
            f"forget.schedule needs exactly one method other than retrain (the run ends with retrain as the "
            f"reference), got {methods}",
        )
    previous = 0
    for i, request in enumerate(cfg.forget.schedule):
        key = f"forget.schedule[{i}]"
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


def validate(cfg: Config, registered_methods: tuple[str, ...]) -> None:
    """Check ranges and names that the types alone cannot; raise ConfigError on the first."""
    _choice("dataset.name", cfg.dataset.name, DATASETS)
    _choice("model.name", cfg.model.name, MODELS)
    _choice("partition.name", cfg.partition.name, PARTITIONS)
    _choice("history.dtype", cfg.history.dtype, HISTORY_DTYPES)
    if cfg.dataset.test_fraction is not None:
        _in_range("dataset.test_fraction", cfg.dataset.test_fraction, 0.0, 0.9, low_open=True)
    if cfg.dataset.name == "synthetic":
        for key in ("num_samples", "num_classes", "shape", "class_sep"):
            if getattr(cfg.dataset, key) is None:
                raise ConfigError(f"dataset.{key}", "required for dataset=synthetic")
        assert cfg.dataset.num_samples is not None and cfg.dataset.num_classes is not None
        _at_least("dataset.num_samples", cfg.dataset.num_samples, 2)
        _at_least("dataset.num_classes", cfg.dataset.num_classes, 2)
        shape = list(cfg.dataset.shape or [])
        if len(shape) not in (1, 3) or min(shape) < 1:
            raise ConfigError("dataset.shape", f"must be [features] or [C, H, W], got {shape}")
    _at_least("model.hidden", cfg.model.hidden, 1)
    _in_range("partition.alpha", cfg.partition.alpha, 0.0, float("inf"), low_open=True)
    _at_least("partition.shards_per_client", cfg.partition.shards_per_client, 1)
    _at_least("partition.min_partition_size", cfg.partition.min_partition_size, 0)
    fl = cfg.fl
    _at_least("fl.num_clients", fl.num_clients, 1)
    _at_least("fl.num_rounds", fl.num_rounds, 1)
    _at_least("fl.local_epochs", fl.local_epochs, 1)
    _at_least("fl.batch_size", fl.batch_size, 1)
    _in_range("fl.lr", fl.lr, 0.0, float("inf"), low_open=True)
    _in_range("fl.momentum", fl.momentum, 0.0, 1.0)
    _in_range("fl.fraction_train", fl.fraction_train, 0.0, 1.0, low_open=True)
    _in_range("fl.dropout_rate", fl.dropout_rate, 0.0, 1.0, high_open=True)
    _at_least("history.interval", cfg.history.interval, 1)
    _at_least("ray.num_cpus_per_client", cfg.ray.num_cpus_per_client, 0.0)
    _at_least("ray.num_gpus_per_client", cfg.ray.num_gpus_per_client, 0.0)
    if cfg.ray.num_cpus is not None:
        _at_least("ray.num_cpus", cfg.ray.num_cpus, 1)
    if cfg.ray.num_gpus is not None:
        _at_least("ray.num_gpus", cfg.ray.num_gpus, 0)
    _client_ids("backdoor.clients", list(cfg.backdoor.clients), fl.num_clients)
    _in_range("backdoor.fraction", cfg.backdoor.fraction, 0.0, 1.0)
    _at_least("backdoor.target_label", cfg.backdoor.target_label, 0)
    _at_least("backdoor.trigger_size", cfg.backdoor.trigger_size, 1)
    _client_ids("forget.clients", list(cfg.forget.clients), fl.num_clients)
    if len(cfg.forget.clients) >= fl.num_clients:
        raise ConfigError("forget.clients", "at least one client must remain after forgetting")
    methods = method_names(cfg, registered_methods)
    if not cfg.history.record and (methods or cfg.forget.clients or cfg.forget.schedule):
        raise ConfigError("history.record", "unlearning needs the history: set history.record=true")
    if cfg.forget.schedule:
        _check_schedule(cfg, methods)
    elif methods and not cfg.forget.clients:
        raise ConfigError("forget.clients", "unlearning.methods is set but no client is forgotten")
    fe = cfg.unlearning.federaser
    _in_range("unlearning.federaser.calibration_ratio", fe.calibration_ratio, 0.0, 1.0, low_open=True)
    _choice("unlearning.federaser.granularity", fe.granularity, GRANULARITIES)
    for key, interval in (
        ("unlearning.federaser.interval", fe.interval),
        ("unlearning.fedaccum.interval", cfg.unlearning.fedaccum.interval),
    ):
        _at_least(key, interval, 1)
        if interval % cfg.history.interval != 0:
            raise ConfigError(
                key,
                f"{interval} is not a multiple of history.interval={cfg.history.interval}; "
                "the history does not store the rounds it replays",
            )
    needs_every_round = [m for m in methods if m in ("fedrecover", "fedrecovery", "kd")]
    if needs_every_round and cfg.history.interval != 1:
        raise ConfigError(
            "history.interval", f"must be 1 for {', '.join(needs_every_round)} (they read every round's updates)"
        )
    u = cfg.unlearning
    _at_least("unlearning.finetune.rounds", u.finetune.rounds, 1)
    fr = u.fedrecover
    _at_least("unlearning.fedrecover.buffer_size", fr.buffer_size, 1)
    if fr.warmup_rounds <= fr.buffer_size:
        raise ConfigError("unlearning.fedrecover.warmup_rounds", "must exceed unlearning.fedrecover.buffer_size")
    _at_least("unlearning.fedrecover.correction_period", fr.correction_period, 1)
    _at_least("unlearning.fedrecover.final_rounds", fr.final_rounds, 0)
    _in_range("unlearning.fedrecover.tau_quantile", fr.tau_quantile, 0.0, 1.0)
    _in_range("unlearning.fedrecover.tau_factor", fr.tau_factor, 0.0, float("inf"), low_open=True)
    _at_least("unlearning.pga.epochs", u.pga.epochs, 1)
    _in_range("unlearning.pga.lr", u.pga.lr, 0.0, float("inf"), low_open=True)
    _in_range("unlearning.pga.radius_fraction", u.pga.radius_fraction, 0.0, float("inf"), low_open=True)
    _at_least("unlearning.pga.random_models", u.pga.random_models, 1)
    _at_least("unlearning.pga.post_rounds", u.pga.post_rounds, 0)
    _in_range("unlearning.fedrecovery.epsilon", u.fedrecovery.epsilon, 0.0, float("inf"), low_open=True)
    _in_range("unlearning.fedrecovery.beta", u.fedrecovery.beta, 0.0, 1.0, low_open=True)
    _at_least("unlearning.fedrecovery.sensitivity_scale", u.fedrecovery.sensitivity_scale, 0.0)
    _at_least("unlearning.kd.server_samples", u.kd.server_samples, 1)
    _at_least("unlearning.kd.epochs", u.kd.epochs, 1)
    _in_range("unlearning.kd.temperature", u.kd.temperature, 0.0, float("inf"), low_open=True)
    _at_least("evaluation.batch_size", cfg.evaluation.batch_size, 1)
