"""The ``fedunlearn`` command: a Hydra app (config in ``conf/``; sweeps with ``-m``)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, cast

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
    return cfg


@hydra.main(version_base="1.3", config_path="pkg://fedunlearn.conf", config_name="config")
def main(dcfg: DictConfig) -> None:
    try:
        cfg = load_config(dcfg)
    except ConfigError as err:
        print(f"fedunlearn: invalid config: {err}", file=sys.stderr)
        sys.exit(2)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # Flower's database layer logs its plugins at INFO
    from fedunlearn.fl.simulation import simulate
    from fedunlearn.reporting.console import summary
    from fedunlearn.reporting.results import write_results

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("run directory: %s", run_dir)
    results = simulate(cfg, run_dir)
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
