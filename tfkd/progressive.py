"""Progressive neural networks (Rusu et al., 2016): a frozen source column and a new column fed by lateral adapters.

A model trained on a source task becomes a frozen *column*; a fresh column of the same layer structure learns the
target task, and every Conv2D / Dense layer of the new column after the first also receives, through a lateral
*adapter*, the activation that enters the matching layer of the source column (the output of the source layer
before it). The source column is never updated, so the source task keeps exactly the accuracy it had: nothing is
forgotten, at the price of a second column and the adapters.

An adapter is the paper's non-linear lateral connection ``U relu(V (alpha * h))``: a learned scalar ``alpha``
(:class:`LateralScale`, so the scale of the source activations is learned), a reduction ``V`` (a 1x1 convolution
to ``ceil(channels / reduction)`` channels for a conv layer, a Dense of ``min(dense_width, features)`` units for a
dense layer) with ReLU, and ``U``, shaped like the target layer it feeds (same kernel size, strides and padding,
or the same units), without bias. Its output is added to the target layer's pre-activation, so the target
layers must have a linear activation (tfkd's builders put BN / ReLU in layers of their own).

Both columns must be sequential chains of layers (``plain_cnn`` and ``mlp`` are; ``resnet_cifar`` is not) with the
same layer types in the same order and the same spatial sizes; widths and the number of classes may differ.

References: A. A. Rusu et al., "Progressive Neural Networks", arXiv:1606.04671, 2016.

Example:

    from tfkd import progressive, training
    source = models.plain_cnn(2, (8, 8, 1), 10, seed=0)    # (trained on the source task)
    column = models.plain_cnn(2, (8, 8, 1), 10, seed=1)    # fresh, for the target task
    net = progressive.progressive_network(source, column)
    training.train_supervised(net, 1.0 - x_train, y_train, epochs=1)   # the target task: inverted digits
    frozen = progressive.source_column(net)                # image -> source logits, weights as the source's
    assert all(np.array_equal(a, b) for a, b in zip(frozen.get_weights(), source.get_weights()))
"""

from __future__ import annotations

import math

import keras

__all__ = ["LateralScale", "adapter_layers", "progressive_network", "source_column"]

SOURCE_COLUMN = "source_column"  # name of the nested frozen source model inside a progressive network
_MAIN = (keras.layers.Conv2D, keras.layers.Dense)  # the layers that get a lateral input (DepthwiseConv2D does not)


@keras.saving.register_keras_serializable(package="tfkd")
class LateralScale(keras.layers.Layer):
    """``alpha * x`` with one learned scalar ``alpha``: the scale of a lateral input (Rusu et al., 2016, eq. 2)."""

    def __init__(self, initial=1.0, **kwargs):
        super().__init__(**kwargs)
        self.initial = float(initial)
        self.alpha = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial), name="alpha")

    def call(self, inputs):
        return inputs * keras.ops.cast(self.alpha, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "initial": self.initial}


def _chain(model, what):
    """The layers of ``model`` after its input, checked to form one sequential chain."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"{what} {model.name!r} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         "a progressive column is a one-input, one-output chain of layers (e.g. plain_cnn, mlp).")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]
    for layer in layers:
        nodes = getattr(layer, "_inbound_nodes", [])
        if len(nodes) != 1 or layer.input is not previous:
            raise ValueError(f"{what} {model.name!r}: layer {layer.name!r} ({type(layer).__name__}) does not take "
                             "the previous layer's output alone, so the model is not a sequential chain (a residual "
                             "or branching model such as resnet_cifar); use a plain_cnn or mlp column.")
        previous = layer.output
    return layers


def _main_layers(layers):
    return [layer for layer in layers if isinstance(layer, _MAIN) and type(layer) in _MAIN]


def adapter_layers(target_layer, channels, *, reduction=2, dense_width=32, name="lateral"):
    """The adapter layers ``[LateralScale, V, U]`` that carry a source activation of ``channels`` channels (or
    features) into ``target_layer`` (a Conv2D or a Dense); apply them in order and add the result to
    ``target_layer``'s output.

    Example:

        from tfkd import progressive
        conv = keras.layers.Conv2D(16, 3, padding="same")
        scale, reduce, project = progressive.adapter_layers(conv, channels=8)
        h = keras.Input((7, 7, 8))
        lateral = project(reduce(scale(h)))                       # [batch, 7, 7, 16], as conv's output
    """
    if isinstance(target_layer, keras.layers.Conv2D) and type(target_layer) is keras.layers.Conv2D:
        width = max(1, math.ceil(channels / reduction))
        reduce = keras.layers.Conv2D(width, 1, activation="relu", kernel_initializer="he_normal",
                                     name=f"{name}_reduce")
        project = keras.layers.Conv2D(target_layer.filters, target_layer.kernel_size, strides=target_layer.strides,
                                      padding=target_layer.padding, dilation_rate=target_layer.dilation_rate,
                                      use_bias=False, kernel_initializer="he_normal", name=f"{name}_project")
    elif isinstance(target_layer, keras.layers.Dense):
        width = max(1, min(int(dense_width), int(channels)))
        reduce = keras.layers.Dense(width, activation="relu", kernel_initializer="he_normal", name=f"{name}_reduce")
        project = keras.layers.Dense(target_layer.units, use_bias=False, kernel_initializer="glorot_uniform",
                                     name=f"{name}_project")
    else:
        raise ValueError(f"target_layer={target_layer.name!r} is a {type(target_layer).__name__}; lateral adapters "
                         "feed Conv2D and Dense layers.")
    return [LateralScale(1.0, name=f"{name}_alpha"), reduce, project]


def _clone(model, prefix=""):
    """A copy with the same weights (the caller's model is left as it is), layer names given ``prefix``."""
    def rename(layer):
        return layer.__class__.from_config({**layer.get_config(), "name": prefix + layer.name})

    copy = keras.models.clone_model(model, clone_function=rename if prefix else None)
    copy.set_weights(model.get_weights())
    return copy


def progressive_network(source, column, *, reduction=2, dense_width=32, name="progressive"):
    """A two-column progressive network: ``source`` frozen, ``column`` trainable with lateral adapters; logits out.

    Args:
        source: the model trained on the source task (copied, then frozen; the caller's model is not changed).
        column: a fresh model of the same layer structure for the target task (copied; its layers are renamed
            ``target_<name>``); its head sets the number of target classes.
        reduction: conv adapters reduce the source channels by this factor (1x1 conv) before projecting.
        dense_width: dense adapters reduce the source features to at most this many units before projecting.
        name: the returned model's name.

    Returns a ``keras.Model`` (image -> target logits) holding the frozen source as the nested model
    ``"source_column"`` (whose last output is the source logits; :func:`source_column` gives it as a model).
    Trainable: the target column and the adapters. BatchNormalization in the frozen column runs in inference mode,
    so its moving statistics do not move either.
    """
    if tuple(source.input_shape[1:]) != tuple(column.input_shape[1:]):
        raise ValueError(f"source takes inputs {tuple(source.input_shape[1:])} but column takes "
                         f"{tuple(column.input_shape[1:])}; both columns see the same images.")
    if reduction <= 0 or dense_width <= 0:
        raise ValueError(f"reduction={reduction} and dense_width={dense_width} must be > 0.")
    src, dst = _clone(source), _clone(column, prefix="target_")
    src_layers, dst_layers = _chain(src, "source"), _chain(dst, "column")
    kinds = [type(layer).__name__ for layer in src_layers], [type(layer).__name__ for layer in dst_layers]
    if kinds[0] != kinds[1]:
        raise ValueError(f"source and column have different layer structures ({' > '.join(kinds[0])} vs "
                         f"{' > '.join(kinds[1])}); build the column with the source's family and size.")
    src_main, dst_main = _main_layers(src_layers), _main_layers(dst_layers)
    for layer in dst_main[1:]:  # the layers that get a lateral
        if getattr(layer, "activation", None) not in (None, keras.activations.linear):
            raise ValueError(f"column layer {layer.name!r} has activation {layer.activation.__name__}; a lateral "
                             "input is added before the non-linearity, so Conv2D / Dense layers must be linear "
                             "(put the activation in a layer of its own, as tfkd's builders do).")
    # The frozen column gives, for each main layer after the first, the activation entering it, and its logits.
    laterals = [layer.input for layer in src_main[1:]]
    frozen = keras.Model(src.inputs, [*laterals, src.outputs[0]], name=SOURCE_COLUMN)
    frozen.trainable = False
    inputs = keras.Input(shape=tuple(source.input_shape[1:]), name="image")
    from_source = frozen(inputs)
    lateral_of = {id(layer): h for layer, h in zip(dst_main[1:], from_source[:-1])}
    x = inputs
    for layer in dst_layers:
        out = layer(x)
        if id(layer) in lateral_of:
            h = lateral_of[id(layer)]
            if tuple(h.shape[1:-1]) != tuple(x.shape[1:-1]):
                raise ValueError(f"column layer {layer.name!r} takes inputs {tuple(x.shape[1:])} but the source "
                                 f"activation entering its twin is {tuple(h.shape[1:])}; the columns' spatial "
                                 "sizes must match.")
            for part in adapter_layers(layer, int(h.shape[-1]), reduction=reduction, dense_width=dense_width,
                                       name=f"lateral_{layer.name[len('target_'):]}"):
                h = part(h)
            out = keras.layers.Add(name=f"{layer.name}_plus_lateral")([out, h])
        x = out
    return keras.Model(inputs, x, name=name)


def source_column(net):
    """The frozen source column of a :func:`progressive_network` as a model: image -> source logits."""
    try:
        frozen = net.get_layer(SOURCE_COLUMN)
    except ValueError:
        raise ValueError(f"model {net.name!r} has no {SOURCE_COLUMN!r} layer; expected a model built by "
                         "tfkd.progressive.progressive_network.") from None
    return keras.Model(frozen.inputs, frozen.outputs[-1], name="source_task")
