"""Every ``Example:`` block of a docstring under ``tfkd/`` (tfkd/terms too) runs as written.

A block is the indented code under a line ``Example:`` or ``Example (what it shows):`` in a module, class or
function docstring; each is one test case, named ``<file>:<qualified name>`` (``<module>`` for a module docstring).
It runs with ``exec`` in a fresh namespace, with the current directory a fresh temporary one (relative paths such
as ``runs/x/report.json`` land there) and ``TFKD_DATA_DIR`` set to the real-data folder. Examples may use these
names without defining them, and nothing else:

- ``tfkd``, ``keras``, ``np`` (numpy), ``data`` (``tfkd.data``), ``models`` (``tfkd.models``);
- ``teacher``, ``student``: small conv nets (``models.plain_cnn`` 4 and 2) on 8x8x1 digits images, 10 logits out,
  uncompiled; the teacher trained (4 epochs on the digits training split), the student not; fresh for each example;
- ``x_train, y_train, x_test, y_test``: a small real digits subset (256 / 128 scikit-learn 8x8 digits, float32 in
  [0, 1], 8x8x1; int64 labels), and ``x, y``: the same arrays as ``x_train, y_train``;
- ``data_dir``: the real-data folder (a ``pathlib.Path``); ``tmp``: the temporary directory (also the current one).

Anything else an example imports or builds itself. An example that trains keeps to tiny sizes (``epochs=1`` to 3),
so that the file runs in well under a minute and a half on a 2-core CPU. What ``console.quiet()`` changes for the
whole process is put back after each example. A block whose first line is ``# not run: <reason>`` is skipped with
that reason: only for what one CPU machine cannot do (several hosts, a GPU).
"""

import ast
import os
import pathlib
import re

import numpy as np
import pytest

from conftest import REPO

HEADER = re.compile(r"Example( \(.*\))?:")
SKIP = re.compile(r"#\s*not run:\s*(.+)")
_DIGITS = {"n_train": 256, "n_test": 128}


def _docstring_nodes(tree):
    """``(qualified name, node)`` for the module and every class and function, nested ones included."""
    yield "<module>", tree
    stack = [("", tree)]
    while stack:
        prefix, parent = stack.pop()
        for node in ast.iter_child_nodes(parent):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + node.name
                yield name, node
                stack.append((name + ".", node))
            elif not isinstance(node, ast.expr):
                stack.append((prefix, node))  # if/try/with blocks at any level


def _blocks(path: pathlib.Path):
    """``(qualified name, first line of the code in the file, code)`` for each Example block in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for name, node in _docstring_nodes(tree):
        if not (node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                and isinstance(node.body[0].value.value, str)):
            continue
        first_line = node.body[0].value.lineno  # line i of the docstring is line first_line + i of the file
        lines = node.body[0].value.value.expandtabs().split("\n")
        for i, line in enumerate(lines):
            if not HEADER.fullmatch(line.strip()):
                continue
            indent = len(line) - len(line.lstrip())
            body = []
            for later in lines[i + 1:]:
                if later.strip() and len(later) - len(later.lstrip()) <= indent:
                    break
                body.append(later)
            while body and not body[-1].strip():
                body.pop()
            start = next((k for k, b in enumerate(body) if b.strip()), len(body))
            code_lines = body[start:]
            margin = min((len(b) - len(b.lstrip()) for b in code_lines if b.strip()), default=0)
            code = "\n".join(b[margin:] for b in code_lines)
            yield name, first_line + i + 1 + start, code


def _collect():
    cases, seen = [], {}
    for path in sorted((REPO / "tfkd").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for name, line, code in _blocks(path):
            case_id = f"{rel}:{name}"
            seen[case_id] = seen.get(case_id, 0) + 1
            if seen[case_id] > 1:
                case_id += f"#{seen[case_id]}"
            cases.append(pytest.param(path, line, code, id=case_id))
    return cases


CASES = _collect()


def test_collects_every_example_block_including_tfkd_terms():
    ids = [c.id for c in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids), ids
    assert "tfkd/teachers.py:<module>" in ids and "tfkd/data.py:load" in ids
    assert any(i.startswith("tfkd/terms/") for i in ids)
    assert "tfkd/distiller.py:Distiller" in ids and "tfkd/terms/base.py:Term" in ids


def test_collector_reads_both_headers_nested_functions_and_the_skip_line(tmp_path):
    source = tmp_path / "module.py"
    source.write_text('"""Module.\n\nExample (two lines):\n\n    a = 1\n    b = a + 1\n\nProse again.\n"""\n\n\n'
                      'class C:\n    def f(self):\n        """F.\n\n        Example:\n\n'
                      '            # not run: needs two hosts (TF_CONFIG)\n            g()\n        """\n')
    assert list(_blocks(source)) == [("<module>", 5, "a = 1\nb = a + 1"),
                                     ("C.f", 18, "# not run: needs two hosts (TF_CONFIG)\ng()")]
    assert SKIP.match("# not run: needs two hosts (TF_CONFIG)").group(1) == "needs two hosts (TF_CONFIG)"


@pytest.fixture(scope="session")
def _digits():
    from tfkd import data

    return data.subset(data.load("digits"), seed=0, **_DIGITS)


@pytest.fixture(scope="session")
def _teacher_weights():
    import keras

    from tfkd import data, models

    train = data.load("digits")  # the whole training split (1438 images): a teacher worth the name, ~95% on test
    teacher = models.plain_cnn(4, (8, 8, 1), 10, seed=0)
    teacher.compile(optimizer=keras.optimizers.Adam(3e-3),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(train.x_train, train.y_train, batch_size=64, epochs=4, verbose=0)
    return teacher.get_weights()


@pytest.fixture
def _console_state(monkeypatch):
    """``console.quiet()`` (the console examples) is process-wide: its flag, loggers and hooks are put back after."""
    import logging
    import sys

    from absl import logging as absl_logging

    from tfkd import console

    monkeypatch.setattr(console, "_quiet", console._quiet)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    levels = {name: logging.getLogger(name).level for name in console.LOGGERS}
    verbosity = absl_logging.get_verbosity()
    yield
    absl_logging.set_verbosity(verbosity)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def namespace(request, data_dir, _digits, tmp_path, monkeypatch, _console_state):
    """``names -> dict``: the names an example may assume (see the module docstring), fresh for each example.

    ``teacher`` and ``student`` are built only for an example that uses them (building costs a fraction of a
    second each, and most examples do not).
    """
    import keras

    import tfkd
    from tfkd import data, models

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TFKD_DATA_DIR", str(data_dir))
    (x_train, y_train), (x_test, y_test) = _digits

    def make(names):
        ns = {
            "__name__": "__example__",
            "tfkd": tfkd, "keras": keras, "np": np, "data": data, "models": models,
            "x_train": x_train.copy(), "y_train": y_train.copy(), "x_test": x_test.copy(), "y_test": y_test.copy(),
            "x": x_train.copy(), "y": y_train.copy(),
            "data_dir": pathlib.Path(data_dir), "tmp": tmp_path,
        }
        if "teacher" in names:
            ns["teacher"] = models.plain_cnn(4, (8, 8, 1), 10, seed=0)
            ns["teacher"].set_weights(request.getfixturevalue("_teacher_weights"))
        if "student" in names:
            ns["student"] = models.plain_cnn(2, (8, 8, 1), 10, seed=1)
        return ns

    return make


@pytest.mark.parametrize("path, line, code", CASES)
def test_example_runs(path, line, code, namespace):
    assert code.strip(), f"{path}:{line}: an 'Example:' line with no indented code under it"
    skip = SKIP.match(code.lstrip().splitlines()[0])
    if skip:
        pytest.skip(skip.group(1).strip())
    # Padded so that a syntax error or a traceback names the docstring's own line in the file.
    tree = ast.parse("\n" * (line - 1) + code, filename=os.fspath(path))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    exec(compile(tree, os.fspath(path), "exec"), namespace(names))
