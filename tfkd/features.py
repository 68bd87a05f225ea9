"""Feature taps: one multi-output forward of a Functional or Sequential model, returning its logits and the
outputs of named layers, so a Distiller step runs each model once whatever the number of feature terms.

Example:

    from tfkd.features import FeatureExtractor
    extract = FeatureExtractor(student, ["relu1", "relu2"], role="student")   # layer names of models.plain_cnn
    logits, features = extract(x, training=True)   # features["relu1"]: [batch, h, w, c]
"""

from __future__ import annotations

import keras


def layer_names(model) -> list[str]:
    """The model's top-level layer names, in order (what a feature term may tap)."""
    return [layer.name for layer in getattr(model, "layers", [])]


def is_graph_model(model) -> bool:
    """Whether ``model`` is Functional or Sequential (its layers can be tapped by name, or cloned), not subclassed."""
    try:
        return bool(model.inputs) and model.outputs is not None
    except (AttributeError, ValueError):
        return False


class FeatureExtractor:
    """``model(x) -> (logits, {layer name: output})`` through one Functional model that shares ``model``'s layers.

    Not a tracked Keras object on purpose: its weights are ``model``'s, already saved with it.
    """

    def __init__(self, model, names, role="student"):
        self.model, self.names = model, list(dict.fromkeys(names))
        if not is_graph_model(model):
            raise ValueError(
                f"the {role} {model.name!r} is a subclassed model (type {type(model).__name__}), whose intermediate "
                f"layers cannot be tapped by name. Feature terms need a Functional or Sequential {role}; build it "
                "with keras.Input, or expose the feature as an extra output and tap it from there. Its layers: "
                f"{layer_names(model)}")
        outputs = []
        for name in self.names:
            try:
                outputs.append(model.get_layer(name).output)
            except ValueError:
                raise ValueError(f"the {role} {model.name!r} has no layer named {name!r}. Its layers: "
                                 f"{layer_names(model)}. tfkd.terms.auto_pairs(teacher, student) proposes pairs.") \
                    from None
        if len(model.outputs) != 1:
            raise ValueError(f"the {role} {model.name!r} has {len(model.outputs)} outputs; a Distiller needs one "
                             "(the logits).")
        self.shapes = {n: tuple(o.shape) for n, o in zip(self.names, outputs)}
        self._forward = keras.Model(model.inputs, [model.outputs[0], *outputs], name=f"{model.name}_taps")

    def __call__(self, x, training=False):
        logits, *features = self._forward(x, training=training)
        return logits, dict(zip(self.names, features))
