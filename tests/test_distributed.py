"""MirroredStrategy on two logical CPU devices gives the same losses and weights as one device.

Logical devices must be configured before TensorFlow initialises, so the check runs in a fresh subprocess.
"""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, tfkd

    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 6)).astype("float32")
    y = np.abs(x[:, :4]).argmax(-1).astype("int32")
    sw = np.linspace(0.5, 1.5, 128).astype("float32")

    def mlp(width, seed):
        return keras.Sequential([keras.Input((6,)),
            keras.layers.Dense(width, "relu", kernel_initializer=keras.initializers.GlorotUniform(seed)),
            keras.layers.Dense(4, kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
                               kernel_regularizer=keras.regularizers.L2(1e-3))])

    def distiller(kind):
        keras.utils.set_random_seed(0)  # the adapter's initial weights
        teacher, student = mlp(32, 1), mlp(8, 3)
        if kind == "kd":
            return tfkd.Distiller(teacher, student, alpha=0.7, temperature=3.0)
        # A batch-level term (DIST, gathered over replicas) and a feature term with a trained adapter (8 -> 32).
        return tfkd.Distiller(teacher, student, hard_weight=0.5, terms=[
            tfkd.terms.DIST(temperature=2.0, weight=1.0),
            tfkd.terms.Hint(teacher.layers[0].name, student.layers[0].name, weight=0.5)])

    def run(strategy, kind):
        with strategy.scope():
            d = distiller(kind)
            d.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
        ds = tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(32)
        h = d.fit(ds, epochs=2, verbose=0).history
        e = d.evaluate(ds, verbose=0, return_dict=True)
        return {"replicas": strategy.num_replicas_in_sync, "history": h, "eval": e,
                "weights": [w.numpy().tolist() for w in d.trainable_weights]}

    out = {}
    # One MirroredStrategy for both: a second instance in one process reuses collective instance keys.
    one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for kind in ("kd", "terms"):
        out[kind] = {"one": run(one_device, kind), "two": run(mirrored, kind)}
    print("RESULT" + json.dumps(out))
    """
)


def test_mirrored_two_devices_match_one_device():
    """KD shorthand, and DIST (batch-level) + Hint (feature term with an adapter): same losses and weights."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    res = json.loads(line[len("RESULT"):])
    _check(res["kd"], ("loss", "kd_loss", "hard_loss", "agreement", "accuracy"), 4)
    # The terms run trains the adapter's kernel and bias too.
    _check(res["terms"], ("loss", "dist_loss", "hint_loss", "hard_loss", "agreement", "accuracy"), 6)


def _check(res, keys, n_weights):
    one, two = res["one"], res["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(one["weights"]) == len(two["weights"]) == n_weights
    for key in keys:
        assert abs(two["history"][key][0] - one["history"][key][0]) < 1e-5, key
        assert abs(two["history"][key][1] - one["history"][key][1]) < 1e-4, key
        assert abs(two["eval"][key] - one["eval"][key]) < 1e-4, key  # not divided by the replica count
    for a, b in zip(one["weights"], two["weights"]):
        diff = max(abs(p - q) for p, q in zip(_flat(a), _flat(b)))
        assert diff < 1e-5


def _flat(v):
    if isinstance(v, list):
        for item in v:
            yield from _flat(item)
    else:
        yield v
