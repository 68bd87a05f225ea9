"""The Keras model going into an export: load it safely, rebuild it in float32 (its inputs: :mod:`.inputs`).

A ``.keras`` file is loaded with ``safe_mode=True`` (no arbitrary code from ``Lambda`` layers) unless the caller opts
out, and an unreadable or truncated file fails with a message saying so (Keras itself reports "File not found" for a
truncated archive). A student trained in mixed precision (``mixed_float16`` / ``mixed_bfloat16``) is cloned with a
``float32`` policy and its weights copied, so converters see one dtype and the TFLite graph has no float16 casts.

Example:

    from tfkd.export.loading import load_model, as_float32
    model = as_float32(load_model("runs/x/student.keras"))
"""

from __future__ import annotations

from tfkd.export.inputs import input_specs
from tfkd.loading import _first_line, load_model  # model loading is a tfkd concern; re-exported here

__all__ = ["load_model", "as_float32", "is_float32", "single_input_shape"]


def is_float32(model) -> bool:
    """True when every layer computes and stores in float32 (nothing to rebuild before conversion)."""
    for layer in _all_layers(model):
        policy = getattr(layer, "dtype_policy", None)
        if policy is not None and (policy.compute_dtype != "float32" or policy.variable_dtype != "float32"):
            return False
    return True


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def as_float32(model):
    """``model`` itself when it is float32, else a float32 clone with the same weights (mixed-precision students).

    Example:

        keras.mixed_precision.set_global_policy("mixed_float16")
        student = build_student()            # trained in mixed precision ...
        deployable = as_float32(student)     # same weights, float32 everywhere
    """
    import keras

    if is_float32(model):
        return model

    def float32_layer(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(model, clone_function=float32_layer, recursive=True)
    except Exception as err:
        raise ValueError(f"model {model.name!r} uses a mixed-precision policy and could not be rebuilt in float32 "
                         f"for conversion ({type(err).__name__}: {_first_line(err)}). Functional and Sequential "
                         "models are rebuilt automatically; for a subclassed model, build it again under "
                         "keras.mixed_precision.set_global_policy('float32') and copy the weights "
                         "(new.set_weights(old.get_weights())).") from err
    clone.set_weights([w.astype("float32") if w.dtype != "float32" else w for w in model.get_weights()])
    return clone


def single_input_shape(model) -> tuple:
    """The per-example input shape of a one-input, one-output model, e.g. ``(28, 28, 1)``; clear error otherwise.

    Models with several inputs are described by :func:`tfkd.export.inputs.input_specs`.
    """
    specs = input_specs(model)
    if len(specs) != 1:
        raise ValueError(f"model {model.name!r} has {len(specs)} inputs ({', '.join(repr(s.name) for s in specs)}); "
                         "single_input_shape describes one. Use tfkd.export.inputs.input_specs(model) instead.")
    return specs[0].shape
