"""Model size and cost counted from the layers: parameters, FLOPs per example, float32 bytes.

Works on functional and Sequential models of Keras 3 and tf_keras alike (layers are recognised by class name and
read through attributes both share), including models nested inside models.

Example:

    from tfkd import models
    models.describe(models.plain_cnn(2))
    # {'params': 13082, 'total_params': 13146, 'flops': ..., 'macs': ..., 'float32_bytes': 52584, 'uncounted': []}
"""

from __future__ import annotations

import math

__all__ = ["describe"]

_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_ACTIVATIONS = {"ReLU", "ReLU6", "LeakyReLU", "ELU", "PReLU", "Softmax", "Activation"}
_POOL = {"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D"}
_GLOBAL_POOL = {"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"}
_MERGE = {"Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average"}
_FREE = {"InputLayer", "Flatten", "Reshape", "Permute", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
         "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Concatenate", "ZeroPadding1D",
         "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "Identity", "GradientReversal",
         "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomContrast", "RandomCrop"}


def _dims(shape):
    """Per-example dims of a (batch, ...) shape, as ints; None when a dim is unknown."""
    dims = [None if d is None else int(d) for d in list(shape)[1:]]
    return None if any(d is None for d in dims) else dims


def _size(shape):
    dims = _dims(shape)
    return None if dims is None else math.prod(dims)


def _io(layer):
    """(input shapes list, output shape) of the layer's first call, or None when the layer has no graph node."""
    try:
        inputs, output = layer.input, layer.output
    except (AttributeError, ValueError, RuntimeError):
        try:  # tf_keras refuses .input on shared layers; take the first call
            inputs, output = layer.get_input_at(0), layer.get_output_at(0)
        except (AttributeError, ValueError, RuntimeError, IndexError):
            return None
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    if isinstance(output, (list, tuple)):
        return None
    return [tuple(t.shape) for t in inputs], tuple(output.shape)


def _activation_flops(layer, out_size):
    """One op per output element for an activation fused into a conv/dense layer (``activation=...``)."""
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", "linear")
    return 0 if name == "linear" else out_size


def _layer_cost(layer, kind, in_shapes, out_shape):
    """(flops, macs) of one example through ``layer``, or None if this layer type is not known."""
    if kind in _FREE:
        return 0, 0
    out = _size(out_shape)
    first = _dims(in_shapes[0]) if in_shapes else None
    if out is None or first is None:
        return None
    if kind in _CONV or kind == "SeparableConv2D" or kind == "DepthwiseConv2D":
        kernel = math.prod(layer.kernel_size)
        c_in = first[-1]
        if kind in _CONV:
            macs = out * kernel * c_in // getattr(layer, "groups", 1)
        elif kind == "DepthwiseConv2D":
            macs = out * kernel  # each output channel sees one input channel
        else:  # depthwise (c_in * multiplier maps) then pointwise to the output channels
            mid = out // _dims(out_shape)[-1] * c_in * layer.depth_multiplier
            macs = mid * kernel + mid * _dims(out_shape)[-1]
        bias = out if layer.use_bias else 0
        return 2 * macs + bias + _activation_flops(layer, out), macs
    if kind == "Dense":
        macs = out * first[-1]
        bias = out if layer.use_bias else 0
        return 2 * macs + bias + _activation_flops(layer, out), macs
    if kind == "BatchNormalization":
        return 2 * out, 0  # inference: y = x * scale + shift, per element (and it folds into the conv)
    if kind == "Activation":
        return _activation_flops(layer, out), 0
    if kind in _ACTIVATIONS:
        return out, 0
    if kind in _POOL:
        window = math.prod(layer.pool_size)
        extra = out if kind.startswith("Average") else 0  # the division
        return out * (window - 1) + extra, 0
    if kind in _GLOBAL_POOL:
        size = math.prod(first)
        return size - out + (out if "Average" in kind else 0), 0
    if kind in _MERGE:
        n = len(in_shapes)
        return (n - 1) * out + (out if kind == "Average" else 0), 0
    if kind == "Rescaling":
        return 2 * out, 0
    if kind == "StochasticDepth":  # inference: shortcut + residual
        return out, 0
    return None


def _walk(model, totals, uncounted):
    for layer in model.layers:
        kind = type(layer).__name__
        if hasattr(layer, "layers") and kind not in _FREE:  # a nested model: count its own layers
            _walk(layer, totals, uncounted)
            continue
        io = ([], None) if kind in _FREE else _io(layer)
        cost = None if io is None else _layer_cost(layer, kind, *io)
        if cost is None:
            uncounted.append(f"{layer.name} ({kind})")
            continue
        totals[0] += cost[0]
        totals[1] += cost[1]


def _count(weights):
    seen, total = set(), 0
    for w in weights:
        if id(w) not in seen:  # a shared weight counts once
            seen.add(id(w))
            total += math.prod(int(d) for d in w.shape)
    return total


def describe(model):
    """Size and cost of ``model``: trainable params, all params, FLOPs and MACs per example, float32 bytes.

    Returns a dict:

    - ``params``: trainable parameters (what papers report; BN moving statistics excluded).
    - ``total_params``: every weight, trainable or not (BN moving mean/variance included).
    - ``flops``: floating-point operations for ONE example at inference, counted layer by layer from the shapes:
      a multiply-accumulate counts 2 FLOPs (conv, depthwise conv, dense), a bias add 1 per output, BN 2 per element
      (scale and shift), an activation 1 per element, a max-pool ``window - 1`` comparisons per output, an average
      pool the same adds plus 1 division, a merge (Add, ...) ``inputs - 1`` per element; reshapes, dropout and
      input layers are free.
    - ``macs``: multiply-accumulates of the conv and dense layers alone (the figure many papers call "FLOPs";
      ``flops`` is about ``2 * macs`` plus the element-wise work).
    - ``float32_bytes``: ``4 * total_params``, the weights' size in float32 (a ``.keras`` file adds a little).
    - ``uncounted``: ``"name (Class)"`` of layers this counter does not know (they add 0 FLOPs); empty for every
      ``tfkd.models`` family, so a non-empty list says ``flops`` is a lower bound.

    Example:

        info = models.describe(models.resnet_cifar(20))
        print(f"{info['params']:,} params, {info['flops'] / 1e6:.1f} MFLOPs")   # 272,474 params, 82.3 MFLOPs
    """
    if not hasattr(model, "layers"):
        raise ValueError(f"model={model!r} is not a Keras model; describe() expects a keras.Model (or tf_keras).")
    totals, uncounted = [0, 0], []
    _walk(model, totals, uncounted)
    total = _count(model.weights)
    return {
        "params": _count(model.trainable_weights),
        "total_params": total,
        "flops": int(totals[0]),
        "macs": int(totals[1]),
        "float32_bytes": 4 * total,
        "uncounted": uncounted,
    }
