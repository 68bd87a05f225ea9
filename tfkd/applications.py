"""``keras.applications`` models as tfkd specs: ``keras.applications:NAME[,key=value...]``, built to return logits.

tfkd needs logits (the temperature divides them), a head sized for the dataset's classes, and no download on an
offline machine, so a spec builds ``NAME(input_shape=..., classes=num_classes, include_top=True, weights=None,
classifier_activation=None)``. Options after the name override those keywords or add tfkd's own:

- ``weights=PATH``: a local ``.weights.h5`` / ``.h5`` file loaded into the built model (``weights=imagenet``
  downloads, and needs ``classes=1000``, as Keras requires);
- ``bn_momentum=0.9``: the momentum of every BatchNormalization layer. Keras's defaults (0.99, and 0.999 in
  MobileNetV3) suit long ImageNet runs; in a run of a few hundred steps the moving statistics stay near their
  initial values and validation accuracy sits at chance although training accuracy climbs. :func:`build` warns
  when a model keeps a momentum above 0.99;
- any keyword the constructor takes (``alpha=0.75``, ``minimalistic=True``, ``include_preprocessing=False``, ...).

Input range: some families rescale inside the model (MobileNetV3, EfficientNet, EfficientNetV2, ConvNeXt with
``include_preprocessing=True``, their default) and expect pixels in [0, 255] (``--input-scale 255``); the others
expect what their ``preprocess_input`` gives, which tfkd does not apply: feed them [0, 1] images, or add the
preprocessing to the model. :data:`RESCALES_INSIDE` names the first group.

Example:

    from tfkd import applications
    student = applications.build("keras.applications:MobileNetV3Small,minimalistic=True,bn_momentum=0.9",
                                 (32, 32, 3), 10)
"""

from __future__ import annotations

import ast
import difflib
import re
import warnings

PREFIX = "keras.applications:"
# Families whose models hold their own preprocessing by default, so they are fed [0, 255] pixels.
RESCALES_INSIDE = ("MobileNetV3", "EfficientNet", "ConvNeXt")
SLOW_MOMENTUM = 0.99  # above this, a short run's BatchNorm moving statistics lag far behind the weights

__all__ = ["PREFIX", "RESCALES_INSIDE", "build", "is_spec", "parse", "expects_255"]


def is_spec(spec) -> bool:
    """True for a string that names a ``keras.applications`` model."""
    return isinstance(spec, str) and spec.strip().startswith(PREFIX)


def _value(text):
    """``key=value`` value: a Python literal (1, 0.5, True, None, 'x') or, failing that, the text itself (a path)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _constructors() -> dict:
    import keras

    return {name: getattr(keras.applications, name) for name in dir(keras.applications)
            if name[:1].isupper() and callable(getattr(keras.applications, name))}


def parse(spec) -> tuple[str, dict]:
    """``(constructor name, options)`` of a spec; unknown names are refused with the list Keras has."""
    if not is_spec(spec):
        raise ValueError(f"spec={spec!r} is not a keras.applications spec; expected '{PREFIX}NAME[,key=value...]', "
                         f"e.g. '{PREFIX}MobileNetV3Small,bn_momentum=0.9'.")
    name, *pairs = (part.strip() for part in spec.strip()[len(PREFIX):].split(","))
    options = {}
    for pair in pairs:
        key, eq, value = (p.strip() for p in pair.partition("="))
        if not eq or not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise ValueError(f"spec={spec!r}: option {pair!r} is not key=value (e.g. bn_momentum=0.9, alpha=0.75).")
        options[key] = _value(value)
    known = _constructors()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8) or [k for k in known
                                                                             if k.lower() == name.lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else f"; keras.applications has: {', '.join(sorted(known))}"
        raise ValueError(f"spec={spec!r}: {name!r} is not a keras.applications model{hint}.")
    return name, options


def expects_255(spec) -> bool:
    """True when the spec's model rescales its input itself and so should be fed [0, 255] pixels."""
    name, options = parse(spec)
    return name.startswith(RESCALES_INSIDE) and options.get("include_preprocessing", True) is not False


def build(spec, input_shape, num_classes, *, seed=0):
    """The model of ``spec`` for ``input_shape`` and ``num_classes``, returning logits (see the module docstring).

    Raises ValueError naming the spec for a constructor that refuses the shape or an option, and warns when
    BatchNorm layers keep a momentum above :data:`SLOW_MOMENTUM` (pass ``bn_momentum=0.9`` for short runs).
    """
    import keras

    ctor_name, options = parse(spec)
    bn_momentum = options.pop("bn_momentum", None)
    weights = options.pop("weights", None)
    kwargs = {"input_shape": tuple(input_shape), "include_top": True, "weights": None, "classes": int(num_classes),
              "classifier_activation": None, **options}
    if weights == "imagenet":
        kwargs["weights"] = "imagenet"
    keras.utils.set_random_seed(seed)  # keras.applications takes no initializer seeds: the global seed decides
    try:
        model = _constructors()[ctor_name](**kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"spec={spec!r}: keras.applications.{ctor_name} refused input_shape={tuple(input_shape)}, "
                         f"classes={num_classes}: {' '.join(str(err).split())}") from None
    if weights not in (None, "imagenet"):
        try:
            model.load_weights(str(weights))
        except (ValueError, OSError, FileNotFoundError) as err:
            raise ValueError(f"spec={spec!r}: weights={weights!r} could not be loaded into {ctor_name} built for "
                             f"input_shape={tuple(input_shape)}, classes={num_classes}: {err}") from None
    if bn_momentum is not None:
        if not (isinstance(bn_momentum, (int, float)) and 0 <= bn_momentum < 1):
            raise ValueError(f"spec={spec!r}: bn_momentum={bn_momentum!r}; expected a number in [0, 1), e.g. 0.9.")
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(bn_momentum)
    slow = sorted({layer.momentum for layer in model.layers
                   if isinstance(layer, keras.layers.BatchNormalization) and layer.momentum > SLOW_MOMENTUM})
    if slow:
        warnings.warn(f"{spec}: BatchNormalization momentum {', '.join(f'{m:g}' for m in slow)} is made for long "
                      "ImageNet runs; in a run of a few hundred steps the moving statistics lag and validation "
                      f"accuracy can stay at chance. Add ',bn_momentum=0.9' to the spec for short runs.",
                      stacklevel=2)
    return model
