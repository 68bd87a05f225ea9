"""``auto_pairs``: propose teacher/student layer pairs for feature terms without reading both architectures."""

from __future__ import annotations

import warnings

import keras


def _stages(model):
    """``[(layer name, (h, w))]``: the last layer of each spatial resolution, in depth order (4-D outputs only)."""
    stages = []
    for layer in _body(model):
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            continue
        if len(shape) != 4:
            continue
        if stages and stages[-1][1] == shape[1:3]:
            stages[-1] = (layer.name, shape[1:3])
        else:
            stages.append((layer.name, shape[1:3]))
    return stages


def _body(model):
    """Every layer but the inputs and the last (logits) layer."""
    return [layer for layer in model.layers[:-1] if not isinstance(layer, keras.layers.InputLayer)]


def _at_fraction(model, fraction):
    layers = _body(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no intermediate layers to tap.")
    return layers[min(int(round(fraction * (len(layers) - 1))), len(layers) - 1)].name


def auto_pairs(teacher, student, *, depth_fractions=(0.5,), verbose=True):
    """Pairs ``[(teacher_layer, student_layer)]`` for feature terms (Hint, Attention, SP), with what was chosen.

    For convolutional models: the last layer of each spatial resolution stage of each model (the output just
    before a pooling or strided layer), paired stage by stage at equal resolution; when no resolution matches,
    the deepest stages are aligned. Models without spatial stages (MLPs) are tapped at ``depth_fractions`` of
    their depth (0.5: the middle layer). The choice is printed (``verbose``) and returned; pass it on as
    ``tfkd.terms.Attention(pairs)`` or ``tfkd.terms.Hint(*pairs[-1])``.

    Example:

        pairs = tfkd.terms.auto_pairs(teacher, student)   # e.g. [("relu2", "relu1"), ("relu4", "relu2")]
        distiller = tfkd.Distiller(teacher, student, terms=[tfkd.terms.KD(4.0, weight=0.9),
                                                            tfkd.terms.Attention(pairs)], hard_weight=0.1)
    """
    t_stages, s_stages = _stages(teacher), _stages(student)
    if t_stages and s_stages:
        s_by_size = {size: name for name, size in s_stages}
        pairs = [(t, s_by_size[size]) for t, size in t_stages if size in s_by_size]
        how = "matched by spatial resolution"
        if not pairs:
            k = min(len(t_stages), len(s_stages))
            pairs = [(t[0], s[0]) for t, s in zip(t_stages[-k:], s_stages[-k:])]
            how = "no resolution in common: deepest stages aligned"
    else:
        if t_stages or s_stages:
            warnings.warn("auto_pairs: one model has spatial stages and the other none; tapping both at "
                          f"depth fractions {tuple(depth_fractions)}.", stacklevel=2)
        pairs = [(_at_fraction(teacher, f), _at_fraction(student, f)) for f in depth_fractions]
        how = f"at depth fractions {tuple(depth_fractions)}"
    if not pairs:
        raise ValueError(f"auto_pairs found no layer pairs between {teacher.name!r} and {student.name!r}; name "
                         "them yourself (see tfkd.features.layer_names).")
    if verbose:
        print(f"tfkd.terms.auto_pairs ({how}): " + ", ".join(f"{t} <- {s}" for t, s in pairs))
    return pairs
