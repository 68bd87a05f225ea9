"""A run resumed from its epoch checkpoint draws the very random numbers an uninterrupted run draws (issue 18: 3).

Random state that evolves across epochs: the seed generators of Dropout, of a Distiller's ``augment=`` layers
(RandomRotation/Translation/Zoom, MixUp) and of Noisy Student's input noise, and the shuffle order of a ``tf.data``
pipeline. ``save_weights`` stores none of them; ``tfkd.training`` checkpoints the first kind and
``tfkd.rng.epoch_keyed`` pipelines derive the second from ``(seed, epoch)``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np

from tfkd import augment, rng, training
from tfkd.distiller import Distiller
from tfkd.teachers import cache_from_logits


def _net(seed, dropout=0.3):
    init = keras.initializers.GlorotUniform
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(16, "relu", kernel_initializer=init(seed)),
                             keras.layers.Dropout(dropout, seed=seed),
                             keras.layers.Dense(3, kernel_initializer=init(seed + 1))])


def _images(n=96, seed=0):
    r = np.random.default_rng(seed)
    x = r.random((n, 8, 8, 1)).astype("float32")
    return x, (x[:, :4].mean((1, 2, 3)) * 3).astype("int32").clip(0, 2)


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _same(a, b):
    assert len(a) == len(b)
    for i, (u, v) in enumerate(zip(a, b)):
        np.testing.assert_array_equal(u, v, err_msg=f"weight {i}")


def test_distiller_with_mixup_augmentation_and_dropout_resumes_bit_identically(tmp_path):
    """4 epochs in one go == 2 epochs, then new objects resuming from the checkpoint to 4."""
    x, y = _images()

    def run(epochs, ckpt):
        keras.utils.set_random_seed(0)
        student = _net(3)
        distiller = Distiller(_net(1), student, alpha=0.5, temperature=2.0,
                              augment=augment.layer("simple", mixup=0.2, seed=0))
        distiller.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = training.fit(distiller, x, y, epochs=epochs, batch_size=32, checkpoint_dir=ckpt)
        return _weights(student), history

    full, full_history = run(4, tmp_path / "full")
    run(2, tmp_path / "cut")
    keras.utils.set_random_seed(99)  # whatever the process did meanwhile
    _net(7)(np.zeros((1, 8, 8, 1)), training=True)  # other seed generators exist: names shift, states do not
    resumed, resumed_history = run(4, tmp_path / "cut")
    _same(full, resumed)
    assert full_history == resumed_history
    saved = json.loads((tmp_path / "cut" / "state.json").read_text())["seed_states"]
    assert len(saved) == len(rng.seed_generators(Distiller(_net(1), _net(3), alpha=0.5, temperature=2.0,
                                                           augment=augment.layer("simple", mixup=0.2))))


def test_noisy_pipeline_resumes_bit_identically_and_reshuffles_every_epoch(tmp_path):
    """Noisy Student's path: cached targets, noise on the student's view in tf.data (RandAugment in the recipe
    test below), Dropout, a shuffle per epoch."""
    x, y = _images(80)
    targets = np.random.default_rng(1).normal(size=(80, 3)).astype("float32")
    cache = cache_from_logits(x, targets)

    def run(epochs, ckpt):
        keras.utils.set_random_seed(0)
        noise = augment.make("simple", magnitude=0.5, seed=0)
        ds = cache.dataset(x, batch_size=16, shuffle=True, seed=0, student_transform=noise)
        student = _net(3)
        training.train_distilled(None, student, ds, epochs=epochs, alpha=1.0, temperature=1.0, lr=1e-2,
                                 checkpoint_dir=ckpt)
        return _weights(student), ds

    full, ds = run(4, tmp_path / "full")
    run(2, tmp_path / "cut")
    resumed, _ = run(4, tmp_path / "cut")
    _same(full, resumed)

    def epoch(e):
        rng.set_epoch(ds, e)
        return [(f["student"].numpy(), f["teacher_logits"].numpy()) for (f,) in ds]

    first, again, second = epoch(0), epoch(0), epoch(1)
    for (xa, ta), (xb, tb) in zip(first, again):  # the same epoch: the same order and the same noise
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ta, tb)
    assert not np.array_equal(first[0][1], second[0][1])  # another epoch: another order
    assert sum(len(t) for _, t in first) == 80 and int(ds.cardinality()) == 5


def test_noisy_student_killed_mid_student_resumes_to_the_same_artifacts(tmp_path, data_dir):
    """``tfkd run noisy-student`` (default simple+degrade noise, Dropout, shuffled targets) killed in the student's
    training and resumed ends with the uninterrupted run's weights, logs and report numbers."""
    from run_artifacts import artifacts, assert_same

    args = ["noisy-student", "--dataset", "mnist", "--n-train", "600", "--n-test", "200", "--labeled-fraction",
            "0.25", "--models", "plain_cnn:2,plain_cnn:2", "--iterations", "1", "--no-ablation", "--teacher-epochs",
            "2", "--epochs", "4", "--batch-size", "32", "--dropout", "0.3", "--no-export", "--data-dir", str(data_dir)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")

    def start(*extra):
        return subprocess.Popen([sys.executable, "-m", "tfkd.recipes.runner", *extra], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)

    reference, out = tmp_path / "reference", tmp_path / "run"
    ref = start(*args, "--out", str(reference))  # alongside the run that gets killed: the two share the wait
    proc = start(*args, "--out", str(out))
    ckpt = out / "checkpoints" / "iter1" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if 1 <= json.loads(ckpt.read_text())["epochs_done"] < 4:
                break
        except (OSError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be killed mid-stage"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(ckpt.read_text())["epochs_done"]
    proc = start("--resume", str(out))
    stdout, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:]
    assert f"resuming at epoch {killed_at + 1}/4" in stdout
    ref_out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, ref_out[-3000:]
    assert_same(artifacts(out), artifacts(reference))
