"""The house rules: imports run one way, public names resolve, ``tfkd bench`` is a launcher, loading lives in tfkd/."""

import ast
import importlib
import re
import subprocess
import sys

import pytest

import tfkd

from conftest import REPO

# tfkd/ is the library: it never reaches up into what is built on it.
_UPWARD = ("tfkd.export", "tfkd.recipes", "benchmarks", "export", "recipes")


def _imports(path):
    """(line, module) of every import in a file, at any depth (function-level imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            if node.module == "tfkd":  # from tfkd import export
                yield from ((node.lineno, f"tfkd.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            yield node.lineno, str(node.args[0].value)


def test_tfkd_never_imports_export_recipes_or_benchmarks():
    bad = [f"{path.relative_to(REPO)}:{line} imports {module}"
           for path in sorted((REPO / "tfkd").rglob("*.py")) for line, module in _imports(path)
           if any(module == up or module.startswith(up + ".") for up in _UPWARD)]
    assert not bad, "\n".join(bad)


def test_the_command_does_not_edit_sys_path():
    tree = ast.parse((REPO / "tfkd" / "cli.py").read_text(encoding="utf-8"))
    touched = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "path"
               and isinstance(node.value, ast.Name) and node.value.id == "sys"]
    assert not touched, f"tfkd/cli.py uses sys.path at lines {touched}"


def test_tfkd_bench_outside_the_repository_is_a_clear_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tfkd.cli", "bench", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "no benchmarks/ folder" in out.stderr and "repository root" in out.stderr


def _resolve(dotted):
    """The object ``tfkd.a.b`` names: attributes first, else a submodule (imported)."""
    obj, name = tfkd, "tfkd"
    for part in dotted.split(".")[1:]:
        name = f"{name}.{part}"
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(name)
    return obj


def test_every_public_name_and_every_name_the_readme_uses_resolves():
    for name in tfkd.__all__:
        assert getattr(tfkd, name) is not None, name
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    used = sorted(set(re.findall(r"\btfkd(?:\.[A-Za-z_]\w*)+", readme)))
    assert "tfkd.Distiller" in used and len(used) > 10
    missing = []
    for dotted in used:
        dotted = dotted.rstrip(".")
        try:
            _resolve(dotted)
        except (AttributeError, ImportError) as err:
            missing.append(f"{dotted}: {err}")
    assert not missing, "\n".join(missing)
    # Names the README uses as top-level attributes are re-exported from tfkd itself.
    top = {m.group(1) for m in re.finditer(r"\btfkd\.([A-Z]\w*)", readme)}
    assert top <= set(tfkd.__all__), top - set(tfkd.__all__)


def test_model_loading_lives_in_tfkd_and_export_re_exports_it():
    from tfkd import loading
    from tfkd.export import loading as export_loading

    assert export_loading.load_model is loading.load_model
    import tfkd.export

    assert tfkd.export.load_model is loading.load_model


def test_tuning_takes_tflite_measurement_as_an_argument():
    from tfkd import tuning
    from tfkd.recipes import tune

    space = tuning.SearchSpace(family="mlp", mlp_widths=(8,), mlp_layers=(1,))
    with pytest.raises(ValueError, match="measure= must be a function"):
        tuning.DistilledStudent(space, None, None, None, budget=tuning.Budget(max_int8_bytes=10_000))
    hm = tuning.DistilledStudent(space, None, None, None, budget=tuning.Budget(max_int8_bytes=10_000),
                                 measure=tune.tflite_facts)
    assert hm.measure is tune.tflite_facts


def test_the_tree_passes_ruff():
    """The style stays as it is: ruff (pyflakes + pycodestyle, config in pyproject.toml) finds nothing."""
    try:
        import ruff  # noqa: F401 - installed by the [test] extra
    except ImportError:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO)], capture_output=True,
                         text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
