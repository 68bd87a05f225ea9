"""The README's runnable examples run as written (in a fresh process, from the repository root)."""

import os
import re
import subprocess
import sys

from conftest import REPO


def _python_blocks():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def _run(code, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    script = tmp_path / "example.py"
    script.write_text(f"import os\nos.chdir({str(REPO)!r})\n" + code)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300,
                          cwd=tmp_path)


def test_quick_distillation_example_runs(tmp_path):
    block = next(b for b in _python_blocks() if "tfkd.Distiller(teacher, student" in b)
    block = block.replace('student.save("student.keras")', f'student.save({str(tmp_path / "student.keras")!r})')
    out = _run(block, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    logs = eval(out.stdout.strip().splitlines()[-1])  # the printed evaluate() dict
    assert set(logs) >= {"loss", "kd_loss", "hard_loss", "agreement", "accuracy"}
    assert logs["accuracy"] > 0.85
    assert (tmp_path / "student.keras").exists()


def test_data_example_runs(tmp_path):
    block = next(b for b in _python_blocks() if "data.load(\"mnist\"" in b)
    out = _run(block, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mnist: 60000 train / 10000 test" in out.stdout


def test_methods_example_runs_one_family_each(tmp_path):
    block = next(b for b in _python_blocks() if "tfkd.terms.DKD(" in b)
    out = _run(block, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "auto_pairs (matched by spatial resolution)" in out.stdout
    logs = {line.split(" ", 1)[0]: eval(line.split(" ", 1)[1]) for line in out.stdout.strip().splitlines()[-3:]}
    assert set(logs["logits"]) >= {"dkd_loss", "dist_loss", "hard_loss", "accuracy"}
    assert set(logs["features"]) >= {"kd_loss", "hint_loss", "attention_loss"}
    assert set(logs["relations"]) >= {"rkd_loss", "sp_loss"}
    assert all(0.0 <= v["accuracy"] <= 1.0 for v in logs.values())
