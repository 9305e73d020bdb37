"""Data flows one way: a package never imports one above it (fl/ knows nothing of the history or the run)."""

import ast
from pathlib import Path

import fedunlearn

ROOT = Path(fedunlearn.__file__).parent
LAYERS = {
    "config": 0, "seeds": 0,
    "data": 1, "models": 1,
    "fl": 2,
    "history": 3,
    "evaluation": 4,
    "unlearning": 5,
    "reporting": 6,
    "experiment": 7,
    "app": 8, "flwr_app": 8, "__main__": 8, "__init__": 8,
}  # fmt: skip


def layer(module: str) -> int:
    return LAYERS[module.split(".")[1]] if module.count(".") else LAYERS["__init__"]


def imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedunlearn."):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("fedunlearn.")]
    return names


def test_no_import_runs_back_up() -> None:
    upward = []
    for path in ROOT.rglob("*.py"):
        module = "fedunlearn." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module.removesuffix(".__init__")
        own = layer(module) if module != "fedunlearn" else LAYERS["__init__"]
        upward += [f"{module} → {name}" for name in imports(path) if layer(name) > own]
    assert upward == []


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages | modules <= set(LAYERS)
