"""The "Add a method" guide's example (docs/add-a-method.md), run exactly as written: a method defined outside the
package registers, validates its own keys, and runs end to end next to retrain."""

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedunlearn.config import ConfigError
from tests.conftest import TINY, make_config, run_cli, run_in_process

GUIDE = Path(__file__).parents[1] / "docs" / "add-a-method.md"


def example(tmp_path: Path) -> Path:
    """The section's Python and YAML blocks, written as noisy_recovery.py / .yaml into ``tmp_path``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    section = GUIDE.read_text()
    python = re.search(r"```python\n(.*?)```", section, re.S)
    yaml = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert python and yaml, "docs/add-a-method.md lost its code blocks"
    (tmp_path / "noisy_recovery.py").write_text(python.group(1))
    (tmp_path / "noisy_recovery.yaml").write_text(yaml.group(1))
    return tmp_path


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example imported (so registered) for one test, then unregistered."""
    import importlib

    from fedunlearn.unlearning import registry

    folder = example(tmp_path / "plugin")
    monkeypatch.syspath_prepend(str(folder))
    importlib.import_module("noisy_recovery")
    yield folder
    registry._METHODS.pop("noisy_recovery", None)
    sys.modules.pop("noisy_recovery", None)


def test_the_example_registers_validates_and_runs(plugin: Path, tmp_path: Path) -> None:
    overrides = (*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,noisy_recovery]")
    cfg = make_config(*overrides)
    assert cfg.unlearning.noisy_recovery.sigma == 0.01 and cfg.unlearning.noisy_recovery.rounds == 2
    with pytest.raises(ConfigError) as err:
        make_config(*overrides, "unlearning.noisy_recovery.rounds=9")
    assert err.value.key == "unlearning.noisy_recovery.rounds"
    with pytest.raises(ConfigError) as err:
        make_config(*overrides, "unlearning.noisy_recovery.sigma=-1")
    assert err.value.key == "unlearning.noisy_recovery.sigma"
    res = run_in_process(cfg, tmp_path / "run")
    entry = res["unlearning"]["noisy_recovery"]
    assert entry["rounds"] == 2 and entry["client_epochs"] == 2 * 3 * 2 and entry["info"] == {"sigma": 0.01}
    assert entry["metrics"]["l2_to_retrain"] > 0 and entry["bytes"]["to_clients"] > 0


@pytest.mark.e2e
def test_the_example_runs_through_the_cli_as_a_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = example(tmp_path / "plugin")
    monkeypatch.setenv("FEDUNLEARN_PLUGINS", "noisy_recovery")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), *sys.path]))
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "backdoor.clients=[1]", "forget.clients=[1]", "unlearning.methods=[retrain,noisy_recovery]",
                   "unlearning.noisy_recovery.rounds=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "noisy_recovery" in proc.stdout
