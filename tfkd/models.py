"""Model families for distillation: plain CNN (2..10), CIFAR ResNet (6n+2), MLP and a mobile CNN; all return logits.

Every builder takes ``input_shape`` and ``num_classes``, returns a functional model whose outputs are **logits** (no
softmax), and is deterministic given ``seed``: each layer gets its own seeded initializer, so two calls with the same
seed give identical weights whatever the global random state. ``framework="tf_keras"`` builds the same architecture
(same layer names, same weight shapes) with tf_keras (Keras 2) for the pruning / quantization-aware-training track;
``copy_weights`` moves trained weights across. Neither Keras 3 nor tf_keras is imported until a builder runs, so a
legacy-Keras process can import this module first.

Example:

    from tfkd import models
    teacher = models.build("resnet_cifar:20", (32, 32, 3), 10, seed=0)
    student = models.plain_cnn(2, (32, 32, 3), 10, seed=1)
    models.describe(student)   # {'params': 13082, 'flops': ..., 'float32_bytes': ...}
    legacy = models.copy_weights(student, models.plain_cnn(2, framework="tf_keras"))
"""

from __future__ import annotations

import numpy as np

from tfkd.describe import describe
from tfkd.weights import copy_weights

__all__ = ["FAMILIES", "build", "copy_weights", "describe", "mlp", "mobile_cnn", "plain_cnn", "resnet_cifar"]

FRAMEWORKS = ("keras", "tf_keras")

# Teacher-assistant study (Mirzadeh et al., 2020) plain CNNs: conv widths with "P" for a 2x2 max-pool, then the
# hidden FC widths. Conv = 3x3 (with bias) + BN + ReLU; FC = Dense + ReLU; then the Dense logits head.
PLAIN_PLANS: dict[int, tuple[tuple, tuple]] = {
    2: ((16, "P", 16, "P"), ()),
    4: ((16, 16, "P", 32, 32, "P"), ()),
    6: ((16, 16, "P", 32, 32, "P", 64, 64, "P"), ()),
    8: ((16, 16, "P", 32, 32, "P", 64, 64, "P", 128, 128, "P"), (64,)),
    10: ((32, 32, "P", 64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P"), (128,)),
}

# mobile_cnn: (pointwise output channels, depthwise stride) of each depthwise-separable block, after a 32-ch stem.
MOBILE_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1))


def _backend(framework):
    """The Keras module for ``framework``: Keras 3 or tf_keras, imported only now (tf_keras stays optional)."""
    if framework == "keras":
        import keras

        return keras
    if framework == "tf_keras":
        try:
            import tf_keras
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError("framework='tf_keras' needs the tf-keras package: pip install 'tfkd[tfmot]'") from err
        return tf_keras
    raise ValueError(f"framework={framework!r} is not supported; expected one of {FRAMEWORKS}.")


class _Seeds:
    """A distinct, reproducible 31-bit seed per layer, derived from the model seed (no global RNG involved).

    Initializers draw from one stream and noise layers (dropout, stochastic depth) from another, so turning noise
    on or off leaves the initial weights of a given seed unchanged.
    """

    def __init__(self, seed):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed={seed!r} must be a non-negative int; the builders are deterministic given it.")
        self.seed, self.count = int(seed), {0: 0, 1: 0}

    def __call__(self, stream=0):
        self.count[stream] += 1
        state = np.random.SeedSequence([self.seed, stream, self.count[stream]]).generate_state(1)[0]
        return int(state % (2**31 - 1))

    def noise(self):
        return self(stream=1)


def _check_image_shape(input_shape, family):
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise ValueError(f"input_shape={input_shape!r} is not valid for {family}: expected (height, width, channels) "
                         "of positive ints, e.g. (32, 32, 3) for CIFAR or (28, 28, 1) for MNIST.")
    return tuple(int(d) for d in shape)


def _check_common(num_classes, dropout, width_multiplier=1.0):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive int (the number of logits).")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout={dropout!r} must be in [0, 1): the drop rate before the logits layer.")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier={width_multiplier!r} must be > 0 (1.0 is the published width).")


def _scaled(channels, width_multiplier):
    return max(1, round(channels * width_multiplier))


def _name(default, name):
    return name if name is not None else default


def _tag(width_multiplier):
    return "" if width_multiplier == 1.0 else f"_x{width_multiplier:g}"


class _Parts:
    """Layer factories for one framework with seeded initializers: the builders read the same for both Kerases."""

    def __init__(self, framework, seed):
        self.K = _backend(framework)
        self.L = self.K.layers
        self.seeds = _Seeds(seed)

    def he(self):
        return self.K.initializers.HeNormal(seed=self.seeds())

    def conv(self, filters, kernel, name, strides=1, use_bias=True):
        return self.L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=use_bias,
                             kernel_initializer=self.he(), name=name)

    def bn(self, name):
        return self.L.BatchNormalization(name=name)

    def relu(self, name, max_value=None):
        return self.L.ReLU(max_value=max_value, name=name)

    def dense(self, units, name):
        return self.L.Dense(units, kernel_initializer=self.he(), name=name)

    def head(self, x, num_classes, dropout):
        if dropout > 0:
            x = self.L.Dropout(dropout, seed=self.seeds.noise(), name="dropout")(x)
        init = self.K.initializers.GlorotUniform(seed=self.seeds())
        return self.L.Dense(num_classes, kernel_initializer=init, name="logits")(x)


def plain_cnn(depth, input_shape=(32, 32, 3), num_classes=10, *, seed=0, framework="keras", name=None,
              dropout=0.0, width_multiplier=1.0):
    """The VGG-like plain CNN of the teacher-assistant study, ``depth`` in 2, 4, 6, 8, 10; returns logits.

    Blocks are 3x3 conv (with bias, ``same`` padding) + BN + ReLU with a 2x2 max-pool after each pair (see
    ``PLAIN_PLANS``), then hidden Dense + ReLU layers for depth 8 and 10, optional dropout, and a Dense logits head.
    On CIFAR-10 (32x32x3) the trainable parameter counts are exactly the study's: 13,082 / 37,338 / 82,778 /
    327,962 / 2,487,850 for depth 2 / 4 / 6 / 8 / 10.

    Small inputs: a pool never shrinks an axis below 1. Its window is ``min(2, size)`` per axis and it is left out
    when both spatial sizes are already 1 (8x8 digits reach 1x1 after three pools, so depth 10 skips the fourth);
    odd sizes floor (MNIST 28 -> 14 -> 7 -> 3 -> 1).

    ``width_multiplier`` scales every conv and hidden FC width (rounded, at least 1); 1.0 is the published model.

    Example:

        model = models.plain_cnn(4, (8, 8, 1), 10, seed=0)   # 8x8 digits; the default is CIFAR's 32x32x3
        logits = model(x)                                    # [batch, 10]
    """
    if depth not in PLAIN_PLANS:
        raise ValueError(f"depth={depth!r} is not a plain_cnn depth; expected one of {sorted(PLAIN_PLANS)}.")
    height, width, _ = _check_image_shape(input_shape, "plain_cnn")
    _check_common(num_classes, dropout, width_multiplier)
    parts = _Parts(framework, seed)
    L = parts.L
    convs, fcs = PLAIN_PLANS[depth]
    inputs = L.Input(shape=tuple(input_shape), name="image")
    x = inputs
    n_conv = n_pool = 0
    for item in convs:
        if item == "P":
            n_pool += 1
            pool = (min(2, height), min(2, width))
            if pool == (1, 1):  # already 1x1: a pool would do nothing (and a 2x2 window would not fit)
                continue
            x = L.MaxPooling2D(pool, name=f"pool{n_pool}")(x)
            height, width = height // pool[0], width // pool[1]
        else:
            n_conv += 1
            x = parts.conv(_scaled(item, width_multiplier), 3, name=f"conv{n_conv}")(x)
            x = parts.bn(f"bn{n_conv}")(x)
            x = parts.relu(f"relu{n_conv}")(x)
    x = L.Flatten(name="flatten")(x)
    for i, units in enumerate(fcs, start=1):
        x = parts.dense(_scaled(units, width_multiplier), name=f"fc{i}")(x)
        x = parts.relu(f"fc{i}_relu")(x)
    outputs = parts.head(x, num_classes, dropout)
    return parts.K.Model(inputs, outputs, name=_name(f"plain_cnn_{depth}{_tag(width_multiplier)}", name))


def resnet_cifar(depth, input_shape=(32, 32, 3), num_classes=10, *, seed=0, framework="keras", name=None,
                 dropout=0.0, width_multiplier=1.0, stochastic_depth=0.0):
    """The CIFAR ResNet of He et al. (2016), ``depth = 6n + 2`` (8, 14, 20, 26, 32, 44, 56, 110, ...); returns logits.

    A 3x3 16-channel stem, three stages of ``n`` basic blocks (two 3x3 convs, no bias, each followed by BN) with
    16 / 32 / 64 channels, stride 2 at the start of stages 2 and 3, a 1x1 conv + BN projection shortcut where the
    shape changes, then global average pooling, optional dropout and a Dense logits head. Trainable parameters on
    CIFAR-10: ResNet-8 78,042, ResNet-20 272,474, ResNet-110 1,730,714.

    Small inputs work as is: stride-2 convs use ``same`` padding, so a 1x1 map stays 1x1.

    ``stochastic_depth`` (Noisy Student's model noise) drops residual branches while training, with Huang et al.'s
    linear rule: block ``i`` of ``B`` drops with probability ``stochastic_depth * i / B``, so the last block drops
    at ``stochastic_depth``. It adds no weights and is the identity at inference; Keras 3 only (a tf_keras twin is
    built with 0, which gives the same inference outputs).

    Example:

        model = models.resnet_cifar(20, (32, 32, 3), 10, seed=0)
        noisy_student = models.resnet_cifar(20, (32, 32, 3), 10, dropout=0.5, stochastic_depth=0.2)
    """
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth={depth!r} is not a CIFAR ResNet depth; expected 6n+2 with n >= 1, "
                         "e.g. 8, 14, 20, 26, 32, 44, 56 or 110.")
    _check_image_shape(input_shape, "resnet_cifar")
    _check_common(num_classes, dropout, width_multiplier)
    if not 0.0 <= stochastic_depth < 1.0:
        raise ValueError(f"stochastic_depth={stochastic_depth!r} must be in [0, 1): the last block's drop rate.")
    if stochastic_depth and framework != "keras":
        raise ValueError(f"stochastic_depth={stochastic_depth} needs framework='keras' (tfkd.layers.StochasticDepth "
                         f"is a Keras 3 layer), got framework={framework!r}; build the tf_keras twin with "
                         "stochastic_depth=0: inference is the same and copy_weights still applies.")
    parts = _Parts(framework, seed)
    L = parts.L
    blocks = (depth - 2) // 6
    merged = 0
    inputs = L.Input(shape=tuple(input_shape), name="image")
    channels = _scaled(16, width_multiplier)
    x = parts.conv(channels, 3, name="stem_conv", use_bias=False)(inputs)
    x = parts.bn("stem_bn")(x)
    x = parts.relu("stem_relu")(x)
    for stage, base in enumerate((16, 32, 64), start=1):
        filters = _scaled(base, width_multiplier)
        for block in range(1, blocks + 1):
            prefix = f"s{stage}b{block}_"
            strides = 2 if stage > 1 and block == 1 else 1
            y = parts.conv(filters, 3, name=prefix + "conv1", strides=strides, use_bias=False)(x)
            y = parts.bn(prefix + "bn1")(y)
            y = parts.relu(prefix + "relu1")(y)
            y = parts.conv(filters, 3, name=prefix + "conv2", use_bias=False)(y)
            y = parts.bn(prefix + "bn2")(y)
            shortcut = x
            if strides != 1 or channels != filters:
                shortcut = parts.conv(filters, 1, name=prefix + "proj", strides=strides, use_bias=False)(x)
                shortcut = parts.bn(prefix + "proj_bn")(shortcut)
            merged += 1
            if stochastic_depth:
                from tfkd.layers import StochasticDepth

                rate = stochastic_depth * merged / (3 * blocks)
                x = StochasticDepth(rate, seed=parts.seeds.noise(), name=prefix + "add")([shortcut, y])
            else:
                x = L.Add(name=prefix + "add")([shortcut, y])
            x = parts.relu(prefix + "relu2")(x)
            channels = filters
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = parts.head(x, num_classes, dropout)
    return parts.K.Model(inputs, outputs, name=_name(f"resnet_cifar_{depth}{_tag(width_multiplier)}", name))


def mlp(widths, input_shape, num_classes, *, seed=0, dropout=0.0, framework="keras", name=None):
    """A multilayer perceptron: flatten, then Dense + ReLU per width in ``widths``, then Dense logits.

    ``dropout`` is applied after every hidden layer (as in Hinton et al.'s MNIST distillation nets) and, with
    ``widths=()``, before the head, which makes a plain softmax-regression model.

    Example:

        model = models.mlp((128, 64), (28, 28, 1), 10, seed=0, dropout=0.2)
    """
    if isinstance(widths, (int, np.integer)):
        widths = (widths,)
    widths = tuple(widths)
    if not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ValueError(f"widths={widths!r} must be positive ints, one per hidden layer, e.g. (128, 64).")
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
        raise ValueError(f"input_shape={input_shape!r} must be a tuple of positive ints, e.g. (28, 28, 1) or (64,).")
    _check_common(num_classes, dropout)
    parts = _Parts(framework, seed)
    L = parts.L
    inputs = L.Input(shape=shape, name="image")
    x = L.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    for i, units in enumerate(widths, start=1):
        x = parts.dense(int(units), name=f"fc{i}")(x)
        x = parts.relu(f"fc{i}_relu")(x)
        if dropout > 0 and i < len(widths):
            x = L.Dropout(dropout, seed=parts.seeds.noise(), name=f"fc{i}_dropout")(x)
    outputs = parts.head(x, num_classes, dropout)
    default = "mlp_" + "-".join(str(w) for w in widths) if widths else "mlp_linear"
    return parts.K.Model(inputs, outputs, name=_name(default, name))


def _make_divisible(value, divisor=8):
    """MobileNet's channel rounding: nearest multiple of 8, never below 8 nor more than 10% below ``value``."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def mobile_cnn(width_multiplier=1.0, input_shape=(28, 28, 1), num_classes=10, *, seed=0, framework="keras",
               name=None, dropout=0.0):
    """A small MobileNet-style CNN of depthwise-separable blocks, built for int8 TFLite on phones; returns logits.

    Stem 3x3 conv (32 channels) + BN + ReLU6, then five blocks of 3x3 depthwise conv + BN + ReLU6 + 1x1 conv + BN +
    ReLU6 with ``MOBILE_BLOCKS`` widths (64, 128/2, 128, 256/2, 256; "/2" = stride 2), global average pooling,
    optional dropout and a Dense logits head. Convs before BN have no bias (BN folds into them on conversion) and
    ReLU6 bounds activations, which keeps int8 quantization ranges tight; every op is a TFLite builtin.

    ``width_multiplier`` scales every width, rounded to a multiple of 8 (MobileNet's rule, SIMD-friendly). The stem
    has stride 2 only for inputs of at least 64x64; strided convs use ``same`` padding so tiny inputs stay >= 1x1.

    Example:

        model = models.mobile_cnn(0.5, (28, 28, 1), 10, seed=0)
    """
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float, np.number)):
        raise TypeError(f"width_multiplier={width_multiplier!r} must be a positive number, e.g. 0.5, 1.0.")
    height, width, _ = _check_image_shape(input_shape, "mobile_cnn")
    _check_common(num_classes, dropout, width_multiplier)
    parts = _Parts(framework, seed)
    L = parts.L
    inputs = L.Input(shape=tuple(input_shape), name="image")
    stem_stride = 2 if min(height, width) >= 64 else 1
    x = parts.conv(_make_divisible(32 * width_multiplier), 3, name="stem_conv", strides=stem_stride,
                   use_bias=False)(inputs)
    x = parts.bn("stem_bn")(x)
    x = parts.relu("stem_relu", max_value=6.0)(x)
    for i, (channels, strides) in enumerate(MOBILE_BLOCKS, start=1):
        x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                              depthwise_initializer=parts.he(), name=f"b{i}_dw")(x)
        x = parts.bn(f"b{i}_dw_bn")(x)
        x = parts.relu(f"b{i}_dw_relu", max_value=6.0)(x)
        x = parts.conv(_make_divisible(channels * width_multiplier), 1, name=f"b{i}_pw", use_bias=False)(x)
        x = parts.bn(f"b{i}_pw_bn")(x)
        x = parts.relu(f"b{i}_pw_relu", max_value=6.0)(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    outputs = parts.head(x, num_classes, dropout)
    return parts.K.Model(inputs, outputs, name=_name(f"mobile_cnn_x{float(width_multiplier):g}", name))


def _parse_int(family, text):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{family} needs an integer size, got {text!r}") from None


def _parse_widths(text):
    try:
        return tuple(int(w) for w in text.split("-"))
    except ValueError:
        raise ValueError(f"mlp needs hidden widths joined by '-', got {text!r}") from None


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"mobile_cnn needs a width multiplier, got {text!r}") from None


# family -> (builder taking (size, input_shape, num_classes, **kw), size parser, example spec, what the size means)
FAMILIES: dict[str, tuple] = {
    "plain_cnn": (plain_cnn, lambda s: _parse_int("plain_cnn", s), "plain_cnn:4", "depth 2, 4, 6, 8 or 10"),
    "resnet_cifar": (resnet_cifar, lambda s: _parse_int("resnet_cifar", s), "resnet_cifar:20", "depth 6n+2"),
    "mlp": (mlp, _parse_widths, "mlp:128-64", "hidden widths joined by '-'"),
    "mobile_cnn": (mobile_cnn, _parse_float, "mobile_cnn:0.5", "width multiplier"),
}


def _families_help():
    return "; ".join(f"{fam}:<{what}> (e.g. {example!r})" for fam, (_, _, example, what) in FAMILIES.items())


def build(spec, input_shape, num_classes, *, seed=0, framework="keras", **options):
    """A model from a spec string ``"family:size"``, for configs and the command line; returns logits.

    Specs: ``plain_cnn:<depth>``, ``resnet_cifar:<depth>``, ``mlp:<w1>-<w2>...``, ``mobile_cnn:<width multiplier>``;
    also ``keras.applications:NAME[,key=value...]`` (:mod:`tfkd.applications`) and a ``.keras`` file (loaded in safe
    mode, with its own weights; its input shape and class count must match).
    ``options`` go to the builder (``dropout=0.2``, ``name=``, and where the family has them ``width_multiplier=0.5``
    or ``stochastic_depth=0.2``).

    Example:

        student = models.build("mlp:128-64", (8, 8, 1), 10, seed=1, dropout=0.1)
        legacy = models.build("plain_cnn:2", (28, 28, 1), 10, framework="tf_keras")
    """
    from tfkd import applications

    if applications.is_spec(spec) or (isinstance(spec, str) and spec.strip().endswith(".keras")):
        if framework != "keras":
            raise ValueError(f"spec={spec!r}: framework={framework!r} rebuilds only tfkd's own families ("
                             f"{', '.join(FAMILIES)}); keras.applications models and .keras files are Keras 3 only.")
        if options:
            raise ValueError(f"spec={spec!r}: options {sorted(options)} apply to tfkd's own families only; "
                             "put keras.applications options in the spec (',key=value').")
        if applications.is_spec(spec):
            return applications.build(spec, input_shape, num_classes, seed=seed)
        return load_spec_file(spec, input_shape, num_classes)
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"spec={spec!r} is not a model spec; expected 'family:size', a .keras file or "
                         f"'keras.applications:NAME', one of: {_families_help()}.")
    family, _, size = (part.strip() for part in spec.partition(":"))
    family = family.lower()
    if family not in FAMILIES:
        raise ValueError(f"spec={spec!r} names an unknown family {family!r}; expected one of: {_families_help()}.")
    builder, parse, example, what = FAMILIES[family]
    try:
        value = parse(size)
    except ValueError as err:
        raise ValueError(f"spec={spec!r}: {err}; expected {family}:<{what}>, e.g. {example!r}.") from None
    try:
        return builder(value, input_shape, num_classes, seed=seed, framework=framework, **options)
    except ValueError as err:
        raise ValueError(f"spec={spec!r}: {err}") from None


def load_spec_file(path, input_shape, num_classes):
    """A ``.keras`` model file named as a spec: loaded in safe mode, checked against the data's shape and classes."""
    from tfkd.loading import load_model

    model = load_model(path, safe_mode=True)
    inputs = list(model.inputs or [])
    got_shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else tuple(tuple(i.shape[1:]) for i in inputs)
    got_classes = model.output_shape[-1] if not isinstance(model.output_shape, list) else None
    if got_shape != tuple(input_shape) or got_classes != int(num_classes):
        raise ValueError(f"{path!r} takes inputs {got_shape} and gives {got_classes} outputs, but the data have "
                         f"inputs {tuple(input_shape)} and {num_classes} classes; give a model made for this data "
                         "(or a spec, which is built for it).")
    return model
