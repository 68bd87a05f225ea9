"""``tfkd.distribute``: strategies by name, TF_CONFIG and the chief, chief-only writes, batch and learning-rate scaling.

The two-logical-CPU checks run in a fresh subprocess (devices must be configured before TensorFlow initialises):
a short last batch split unevenly (or emptily) over replicas trains a Distiller exactly like one device, and a
whole ``tfkd run compress --strategy mirrored`` runs every stage on two replicas.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tfkd import distribute
from tfkd.recipes import runner


def _tf_config(monkeypatch, cluster, task_type, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}}))


TWO = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}


def test_strategy_names_are_checked():
    assert distribute.get_strategy("none") is distribute.get_strategy("none")
    assert distribute.replicas(distribute.get_strategy("none")) == 1
    with pytest.raises(ValueError, match=r"strategy='horovod' is not supported; expected one of none, mirrored, "
                                         r"multiworker"):
        distribute.get_strategy("horovod")
    with pytest.raises(ValueError, match=r"devices=\['/gpu:0'\] is only meaningful with strategy='mirrored'"):
        distribute.get_strategy("none", devices=["/gpu:0"])


def test_tf_config_is_validated(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.tf_config() is None and distribute.task() == (None, None)
    monkeypatch.setenv("TF_CONFIG", "{cluster: oops")
    with pytest.raises(ValueError, match=r"TF_CONFIG='\{cluster: oops' is not valid JSON"):
        distribute.tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": TWO}))
    with pytest.raises(ValueError, match="needs a 'cluster' mapping .* and a 'task' with 'type' and 'index'"):
        distribute.tf_config()
    _tf_config(monkeypatch, TWO, "worker", 2)
    with pytest.raises(ValueError, match="is not in its cluster"):
        distribute.tf_config()


@pytest.mark.parametrize("cluster, task_type, index, chief", [
    (TWO, "worker", 0, True),
    (TWO, "worker", 1, False),
    ({"chief": ["127.0.0.1:3"], **TWO}, "worker", 0, False),  # a cluster with a chief task: worker 0 is not it
    ({"chief": ["127.0.0.1:3"], **TWO}, "chief", 0, True),
])
def test_chief_detection_from_tf_config(monkeypatch, cluster, task_type, index, chief):
    _tf_config(monkeypatch, cluster, task_type, index)
    assert distribute.task() == (task_type, index)
    assert distribute.is_chief() is chief
    assert distribute.num_workers() == sum(len(v) for v in cluster.values())
    # Under a single-process strategy every process trains alone, so it is its own chief whatever TF_CONFIG says.
    assert distribute.is_chief(distribute.get_strategy("none")) is True


def test_chief_path_writes_once(tmp_path, monkeypatch):
    target = tmp_path / "models" / "student.keras"
    _tf_config(monkeypatch, TWO, "worker", 1)
    with distribute.chief_path(target) as path:
        assert path == tmp_path / "models" / "workertemp_1" / "student.keras"
        path.write_text("non-chief copy")
    assert not target.exists() and not (tmp_path / "models" / "workertemp_1").exists()
    _tf_config(monkeypatch, TWO, "worker", 0)
    with distribute.chief_path(target) as path:
        assert path == target
        path.write_text("chief copy")
    assert target.read_text() == "chief copy"


def test_worker_dir_is_a_private_copy_on_non_chiefs(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "checkpoints" / "kd").mkdir(parents=True)
    (run / "state.json").write_text('{"stages": {}}')
    (run / "checkpoints" / "kd" / "state.json").write_text('{"epochs_done": 2}')
    _tf_config(monkeypatch, TWO, "worker", 0)
    assert distribute.worker_dir(run) == run
    _tf_config(monkeypatch, TWO, "worker", 1)
    private = distribute.worker_dir(run)
    assert private != run and not private.is_relative_to(run)
    assert (private / "checkpoints" / "kd" / "state.json").read_text() == '{"epochs_done": 2}'  # resume sees it
    (private / "report.json").write_text("{}")
    distribute.release_worker_dir(private, run)
    assert not private.exists() and not (run / "report.json").exists()
    assert (run / "state.json").exists()  # the chief's directory is untouched


def test_batch_and_learning_rate_scaling():
    none = distribute.get_strategy("none")
    assert distribute.global_batch_size(64, none) == 64
    assert distribute.per_replica_batch_size(64, none) == 64
    assert distribute.scaled_learning_rate(1e-3, global_batch=256, base_batch=64) == pytest.approx(4e-3)
    with pytest.raises(ValueError, match="per_replica_batch=0 must be > 0"):
        distribute.global_batch_size(0, none)
    with pytest.raises(ValueError, match="lr=0.001, global_batch=0 and base_batch=64 must all be > 0"):
        distribute.scaled_learning_rate(1e-3, 0, 64)


def test_strategy_flag_is_validated_before_anything_runs(tmp_path, capsys):
    assert runner.main(["compress", "--strategy", "tpu", "--out", str(tmp_path / "r")]) == 2
    assert "strategy='tpu' is not supported; expected one of none, mirrored, multiworker" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


TWO_CPUS = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, tfkd
    from tfkd import distribute
    from tfkd.recipes import runner

    # 1. A short last batch: 33 = 32 + 1, so one replica's share of the last batch is empty.
    x = np.random.default_rng(0).normal(size=(33, 6)).astype("float32")
    y = (x.sum(1) > 0).astype("int32")
    def fit(strategy):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            t = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
            s = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, kernel_regularizer="l2")])
            d = tfkd.Distiller(t, s, alpha=0.6)
            d.compile(keras.optimizers.SGD(0.1), metrics=["accuracy"])
        h = d.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
        return h, [w.numpy() for w in s.weights]
    mirrored = distribute.get_strategy("mirrored")
    (h1, w1), (h2, w2) = fit(distribute.get_strategy("none")), fit(mirrored)
    short = {"replicas": mirrored.num_replicas_in_sync,
             "weight_diff": float(max(np.abs(a - b).max() for a, b in zip(w1, w2))),
             "loss_diff": float(max(abs(a - b) for a, b in zip(h1["loss"], h2["loss"])))}

    # 2. A whole recipe mirrored over the two devices: every stage's models, optimizers and Distillers.
    out = sys.argv[1]
    code = runner.main(["compress", "--teacher", "mlp:32", "--student", "mlp:16", "--teacher-epochs", "1",
                        "--epochs", "1", "--n-train", "400", "--no-export", "--no-function-matching",
                        "--strategy", "mirrored", "--out", out])
    print("RESULT" + json.dumps({"short": short, "code": code}))
    """
)


def test_two_logical_cpus_short_batches_and_a_mirrored_recipe_run(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", TWO_CPUS, str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))[6:])
    assert res["short"]["replicas"] == 2
    # Each replica's loss is weighted by its share of the global batch, so an uneven or empty share changes
    # nothing (it used to raise: the empty share's mean was NaN and its logits "looked like probabilities").
    assert res["short"]["weight_diff"] < 1e-6 and res["short"]["loss_diff"] < 1e-5
    assert res["code"] == 0
    assert "tfkd run compress -> " in proc.stdout and ", 2 replicas" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["results"]["arms"]) >= {"nokd", "kd", "kd_decay"}
    state = json.loads((tmp_path / "state.json").read_text())
    # teacher, logits, nokd, kd, kd_decay, dkd, dist
    assert all(stage["status"] == "done" for stage in state["stages"].values()) and len(state["stages"]) == 7
