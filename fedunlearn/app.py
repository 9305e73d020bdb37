"""The ``fedunlearn`` command: a Hydra app (config in ``conf/``; sweeps with ``-m``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NoReturn, cast

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedunlearn.config import Config, ConfigError, register_configs, validate

log = logging.getLogger("fedunlearn")

register_configs()


def load_config(dcfg: DictConfig) -> Config:
    """The typed, validated config; raises ConfigError naming the bad key."""
    from fedunlearn import unlearning

    try:
        cfg = cast(Config, OmegaConf.to_object(dcfg))
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(str(key), str(err).splitlines()[0]) from None
    validate(cfg, unlearning.registered())
    check_forgotten_clients_train(cfg)
    return cfg


def compose_config(overrides: list[str]) -> Config:
    """The validated config that ``fedunlearn <overrides>`` would run with (for tests, benchmarks, notebooks)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("fedunlearn.conf", version_base="1.3"):
        return load_config(compose("config", overrides=overrides))


def check_forgotten_clients_train(cfg: Config) -> None:
    """Each forgotten client must contribute to some training round before it leaves (sampling and dropouts
    are seeded, so this is known at start)."""
    from fedunlearn.fl.training import first_training_rounds

    first = first_training_rounds(cfg)
    requests = [("forget.clients", cfg.fl.num_rounds, list(cfg.forget.clients))]
    requests += [(f"forget.schedule[{i}].clients", r.round, list(r.clients)) for i, r in enumerate(cfg.forget.schedule)]
    for key, until, clients in requests:
        trained = [c for c, t in first.items() if t <= until]
        never = [c for c in clients if c not in trained]
        if never:
            raise ConfigError(
                key,
                f"client(s) {never} never train in the {until} rounds before leaving (not sampled by "
                f"fl.fraction_train={cfg.fl.fraction_train} or dropped out); clients that train: "
                f"{_ranges(sorted(trained))}",
            )


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → '0-2, 5, 7-8'."""
    parts: list[str] = []
    for cid in ids:
        if parts and parts[-1].split("-")[-1] == str(cid - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{cid}"
        else:
            parts.append(str(cid))
    return ", ".join(parts)


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, no traceback, a non-zero exit."""
    print(f"fedunlearn: {message}", file=sys.stderr)
    sys.exit(code)


@hydra.main(version_base="1.3", config_path="pkg://fedunlearn.conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    from fedunlearn.checkpoint import CheckpointError, check_run_dir
    from fedunlearn.history.store import HistoryCorruptError

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        cfg = load_config(dcfg)
        check_run_dir(cfg, run_dir)
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    except CheckpointError as err:
        fail(f"cannot resume: {err}", 2)
    except HistoryCorruptError as err:
        fail(f"cannot resume: {err}", 3)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Flower's database layer logs its plugins at INFO
    from fedunlearn.fl.simulation import simulate
    from fedunlearn.reporting.console import summary
    from fedunlearn.reporting.results import write_results

    log.info("run directory: %s%s", run_dir, " (resuming)" if cfg.resume else "")
    try:
        results = simulate(cfg, run_dir)
    except HistoryCorruptError as err:
        fail(str(err), 3)
    config: dict[str, Any] = cast(dict[str, Any], OmegaConf.to_container(dcfg, resolve=True))
    path = write_results(run_dir, config, results)
    if "unlearning" in results:
        from fedunlearn.reporting.plots import plot_methods, plot_rounds
        from fedunlearn.reporting.tables import write_comparison

        write_comparison(run_dir, results)
        plot_methods(run_dir, results)
        plot_rounds(run_dir, results)
    print(summary(results))
    print(f"results: {path} (tables: comparison.md/.tex/.csv, plots: methods.png, rounds.png)")


if __name__ == "__main__":
    main()
