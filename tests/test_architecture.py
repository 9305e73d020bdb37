"""The architecture as code: data flows one way (no package imports one above it), no import circle, Flower only
in the glue, and a method is one module and one YAML."""

import ast
from pathlib import Path

import fedunlearn

ROOT = Path(fedunlearn.__file__).parent
LAYERS = {  # lower layers never import higher ones; packages of one layer do not import each other
    "seeds": 0, "config": 0,
    "data": 1, "models": 1,
    "core": 2,  # Flower-free FL: parameters, local training, FedAvg, the ClientTrainer interface
    "history": 3, "evaluation": 3,
    "unlearning": 4,
    "results": 5,
    "experiment": 6, "flower": 6,  # the stages know a ClientTrainer; the Flower glue implements one
    "reporting": 7,
    "app": 8, "__init__": 8,
    "__main__": 9,
}  # fmt: skip


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("fedunlearn", *parts)).removesuffix(".__init__")


def package(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path) -> list[str]:
    """Every fedunlearn module ``path`` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fedunlearn"):
            names += [node.module] if node.module != "fedunlearn" else []
            where = ROOT.parent / node.module.replace(".", "/")
            names += [f"{node.module}.{a.name}" for a in node.names
                      if (where / f"{a.name}.py").exists() or (where / a.name / "__init__.py").exists()]  # fmt: skip
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("fedunlearn")]
    return names


def graph() -> dict[str, set[str]]:
    modules = {module_of(p): p for p in ROOT.rglob("*.py")}
    return {m: {i for i in imports(p) if i in modules and i != m} for m, p in modules.items()}


def test_no_import_runs_up_or_sideways() -> None:
    wrong = [
        f"{m} → {i}"
        for m, targets in graph().items()
        for i in targets
        if package(i) != package(m) and LAYERS[package(i)] >= LAYERS[package(m)]
    ]
    assert wrong == []


def test_no_import_circle() -> None:
    edges = graph()
    # a package's __init__ re-exports its modules: an edge into the package is an edge into what it re-exports
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(edges[m]):
            if state.get(n) == 1 and not (m.startswith(n + ".") or n.startswith(m + ".")):
                circles.append([*path[path.index(n) :], n] if n in path else [m, n])
            elif n not in state:
                visit(n, [*path, n])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages | modules <= set(LAYERS)


def test_flower_and_ray_only_in_the_glue() -> None:
    """The math, training and methods run without Flower: only flower/ and app/ import flwr or ray."""
    outside = []
    for path in ROOT.rglob("*.py"):
        if package(module_of(path)) in ("flower", "app"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            outside += [f"{module_of(path)}: {n}" for n in names if n.split(".")[0] in ("flwr", "ray")]
    assert outside == []


def test_a_method_is_one_module_and_one_yaml() -> None:
    """Each registered method has its module under unlearning/methods/ and its YAML under conf/unlearning/, and no
    other module of the package names it (adding one edits no list)."""
    from fedunlearn.unlearning import discover, method_class, registered

    discover()
    conf = ROOT.parent / "conf" / "unlearning"
    for name in registered():
        module = method_class(name).__module__
        assert module.startswith("fedunlearn.unlearning.methods."), name
        assert (conf / f"{name}.yaml").exists(), name
    methods = {p.stem for p in (ROOT / "unlearning" / "methods").glob("*.py")} - {"__init__"}
    for path in ROOT.rglob("*.py"):
        if "methods" in path.parts:
            continue
        named = {i.rsplit(".", 1)[-1] for i in imports(path) if ".unlearning.methods." in i}
        assert not named & methods, f"{module_of(path)} imports a method module"


def test_scripts_import_only_names_the_package_has() -> None:
    """benchmarks/ and simulations/ import fedunlearn inside functions (so `--help` is fast): a renamed name would
    only fail hours into a benchmark, so every `from fedunlearn… import name` there must resolve now."""
    import importlib

    missing, checked = [], 0
    for script in sorted([*(ROOT.parent / "benchmarks").glob("*.py"), *(ROOT.parent / "simulations").rglob("*.py")]):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fedunlearn":
                checked += 1
                module = importlib.import_module(node.module)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        try:
                            importlib.import_module(f"{node.module}.{alias.name}")
                        except ImportError:
                            missing.append(f"{script.name}: {node.module}.{alias.name}")
    assert checked > 20 and not missing
