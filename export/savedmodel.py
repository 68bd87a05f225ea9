"""SavedModel writer for TF Serving and GPU servers: one ``serving_default`` signature, dynamic batch, float32 logits.

The signature of a one-input model takes ``inputs`` of shape ``[None, *input_shape]`` (any batch size) and returns
``{"logits": ...}``, the same names whatever the Keras input layer was called, so a client needs to know nothing
about the model. A model with several inputs takes one keyword per input, named after its Keras input
(:attr:`tfkd.export.inputs.InputSpec.key`). Float inputs are float32; integer inputs (token ids) keep their dtype.
It is also the route to TFLite (``TFLiteConverter.from_saved_model``), so both formats come from one traced graph.

Example:

    import tensorflow as tf
    from tfkd.export import to_saved_model
    to_saved_model(model, "out/student_saved_model")
    serve = tf.saved_model.load("out/student_saved_model").signatures["serving_default"]
    logits = serve(inputs=tf.constant(x[:8]))["logits"]
"""

from __future__ import annotations

from pathlib import Path

from tfkd.export.atomic import atomic_dir
from tfkd.export.inputs import SINGLE_KEY, input_specs
from tfkd.export.loading import as_float32, load_model

__all__ = ["to_saved_model", "write_saved_model", "SIGNATURE", "INPUT_KEY", "OUTPUT_KEY"]

SIGNATURE = "serving_default"
INPUT_KEY = SINGLE_KEY  # "inputs"
OUTPUT_KEY = "logits"


def write_saved_model(model, directory) -> Path:
    """Write a float32 ``model`` as a SavedModel into ``directory`` (not atomic; :func:`to_saved_model` is)."""
    import keras
    import tensorflow as tf

    specs = input_specs(model)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def logits(tensors):
        return {OUTPUT_KEY: tf.cast(model(tensors, training=False), tf.float32)}

    if len(specs) == 1:
        def serve(inputs):
            return logits(inputs)
    else:
        # the model's own input structure (a list, or a dict, which keras.tree flattens in model.inputs order)
        struct = getattr(model, "_inputs_struct", None)

        def serve(*inputs):
            return logits(keras.tree.pack_sequence_as(struct, list(inputs)) if struct is not None else list(inputs))

    archive.add_endpoint(name=SIGNATURE, fn=serve,
                         input_signature=[tf.TensorSpec((None, *s.shape), s.dtype, name=s.key) for s in specs])
    archive.write_out(str(directory), verbose=False)
    return Path(directory)


def to_saved_model(model, path, *, safe_mode: bool = True) -> Path:
    """Export ``model`` (a ``keras.Model`` or ``.keras`` path) as a SavedModel directory at ``path``, atomically.

    A mixed-precision model is rebuilt in float32 first. An existing directory at ``path`` is replaced only once the
    new one is complete. Returns ``path``.

    Example:

        to_saved_model("student.keras", "out/student_saved_model")
    """
    model = as_float32(load_model(model, safe_mode=safe_mode))
    input_specs(model)  # refuse string inputs and unknown sizes before touching the file system
    path = Path(path)
    with atomic_dir(path) as tmp:
        write_saved_model(model, tmp)
    return path
