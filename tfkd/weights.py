"""Copying weights between two builds of one architecture, e.g. a Keras 3 student and its tf_keras twin.

The pruning / quantization-aware-training track needs a tf_keras (Keras 2) model: build it from the same
``tfkd.models`` description with ``framework="tf_keras"`` and copy the trained Keras 3 weights in (or back out).

Example:

    from tfkd import models
    student = models.plain_cnn(2, (28, 28, 1), 10)                     # Keras 3, trained ...
    legacy = models.copy_weights(student, models.plain_cnn(2, (28, 28, 1), 10, framework="tf_keras"))
"""

from __future__ import annotations

__all__ = ["copy_weights", "weighted_layers"]

# Keras 3 and tf_keras name a few weights differently; anything else must match by name.
_ALIASES = {"depthwise_kernel": "kernel"}


def weighted_layers(model):
    """Layers that own weights, in model order, nested models flattened."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def _weight_name(variable):
    name = variable.name.split("/")[-1].split(":")[0]  # tf_keras: "conv1/kernel:0"; Keras 3: "kernel"
    return _ALIASES.get(name, name)


def _summary(layer):
    return f"{layer.name!r} ({type(layer).__name__}) with weights " + ", ".join(
        f"{_weight_name(w)}{tuple(int(d) for d in w.shape)}" for w in layer.weights)


def copy_weights(src, dst):
    """Copy every weight of ``src`` into ``dst`` (Keras 3 <-> tf_keras, or same framework); returns ``dst``.

    Layers that own weights are paired by name when both models have the same set of such names (the
    ``tfkd.models`` builders name every layer), otherwise by order. Every pair must agree on the number, names and
    shapes of its weights; all checks run before anything is written, so a mismatch leaves ``dst`` untouched.
    BN moving statistics are copied too, so ``dst`` gives the same inference outputs as ``src``.

    Example:

        legacy = models.copy_weights(student, models.build("plain_cnn:2", (8, 8, 1), 10, framework="tf_keras"))
        np.testing.assert_allclose(legacy.predict(x, verbose=0), student.predict(x, verbose=0), atol=1e-5)
    """
    src_layers, dst_layers = weighted_layers(src), weighted_layers(dst)
    if len(src_layers) != len(dst_layers):
        raise ValueError(
            f"copy_weights: src {src.name!r} has {len(src_layers)} layers with weights but dst {dst.name!r} has "
            f"{len(dst_layers)}; they are different architectures. Build both from the same spec, e.g. "
            "models.build(spec, input_shape, num_classes, framework='tf_keras').")
    src_names = [layer.name for layer in src_layers]
    dst_by_name = {layer.name: layer for layer in dst_layers}
    if sorted(src_names) == sorted(dst_by_name) and len(set(src_names)) == len(src_names):
        pairs = [(layer, dst_by_name[layer.name]) for layer in src_layers]
    else:
        pairs = list(zip(src_layers, dst_layers))
    for i, (a, b) in enumerate(pairs):
        names_a = [(_weight_name(w), tuple(int(d) for d in w.shape)) for w in a.weights]
        names_b = [(_weight_name(w), tuple(int(d) for d in w.shape)) for w in b.weights]
        if names_a != names_b:
            raise ValueError(
                f"copy_weights: weighted layer {i} differs: src {_summary(a)} but dst {_summary(b)}. The models "
                "must be the same architecture (same spec, input_shape and num_classes) to copy weights.")
    for a, b in pairs:
        b.set_weights(a.get_weights())
    return dst
