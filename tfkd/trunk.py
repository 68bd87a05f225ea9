"""A chain model's trunk and head: its layers in groups, the model up to its head, trunk weights copied across.

A *chain* model applies its layers one after the other (every ``tfkd.models`` family but ``resnet_cifar``, whose
skip connections branch). Its layers fall into *groups*: each layer that owns weights starts one (a
BatchNormalization joins the layer before it), and layers without weights (ReLU, pooling, Flatten, Dropout) join
the group before them (those before the first weighted layer join the first group). The last group is the
*head* (the logits layer); the groups before it are the *trunk*, ``trunk_depth(model)`` of them. For
``models.plain_cnn(4)`` the groups are conv1 to conv4 (each with its BN, ReLU and pools) and the logits.

Example:

    from tfkd import trunk
    model = models.plain_cnn(4, (8, 8, 1), 10, seed=0)
    trunk.trunk_depth(model)                        # 4: conv1..conv4; the head is the logits layer
    features = trunk.trunk(model)                   # image -> flattened features, sharing model's layers
    other = models.plain_cnn(4, (8, 8, 1), 3, seed=1)
    trunk.copy_trunk(model, other, depth=2, freeze=True)   # ['conv1', 'bn1', 'conv2', 'bn2'], now frozen
"""

from __future__ import annotations

__all__ = ["check_depth", "copy_trunk", "is_chain", "layer_groups", "trunk", "trunk_depth"]


def is_chain(model) -> bool:
    """Whether every layer of ``model`` takes exactly the output of the layer before it (no branches)."""
    layers = getattr(model, "layers", None)
    if not layers or type(layers[0]).__name__ != "InputLayer" or len(getattr(model, "inputs", None) or []) != 1:
        return False
    try:
        return all(layers[i + 1].input is layers[i].output for i in range(len(layers) - 1)) and \
            model.outputs[0] is layers[-1].output
    except (AttributeError, ValueError):  # a layer called more than once has no single .input
        return False


def _check_chain(model, what):
    if not is_chain(model):
        raise ValueError(f"{what}: model {getattr(model, 'name', model)!r} is not a chain of layers (one input, each "
                         "layer applied once to the output of the one before: plain_cnn, mlp and mobile_cnn are; "
                         "resnet_cifar's skip connections branch), so it has no trunk to split off. Use a chain model.")


def layer_groups(model) -> list:
    """The layers of a chain model after its input, in groups (see the module docstring), in order."""
    import keras

    _check_chain(model, "layer_groups")
    groups, pending = [], []
    for layer in model.layers[1:]:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            groups.append(pending + [layer])
            pending = []
        elif groups:
            groups[-1].append(layer)
        else:
            pending.append(layer)  # before the first weighted layer: joins the first group
    return groups


def trunk_depth(model) -> int:
    """How many groups the trunk of ``model`` has: all groups but the last (the head)."""
    groups = layer_groups(model)
    if len(groups) < 2:
        raise ValueError(f"model {model.name!r} has {len(groups)} layer group(s) with weights; a trunk and a head "
                         "need at least two (e.g. a hidden layer and the logits).")
    return len(groups) - 1


def check_depth(model, depth, what="depth") -> int:
    """``depth`` checked against the trunk of ``model`` (``None``: the whole trunk); returns it as an int."""
    most = trunk_depth(model)
    if depth is None:
        return most
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= most:
        names = ", ".join(g[0].name for g in layer_groups(model)[:-1])
        raise ValueError(f"{what}={depth!r}: model {model.name!r} has a trunk of {most} layer groups ({names}); "
                         f"expected an int in 0..{most}.")
    return depth


def trunk(model, depth=None, name=None):
    """``model`` up to its head (or up to the end of its first ``depth`` groups) as a Functional model.

    The result shares ``model``'s layers (and so its weights): training one trains the other. ``depth=0`` is the
    identity on the input.
    """
    import keras

    depth = check_depth(model, depth)
    out = layer_groups(model)[depth - 1][-1].output if depth else model.inputs[0]
    return keras.Model(model.inputs, out, name=name or f"{model.name}_trunk{depth}")


def copy_trunk(source, target, depth=None, freeze=False) -> list:
    """Copy the weights of the first ``depth`` layer groups of ``source`` into ``target``; returns their names.

    ``source`` may be a whole model or a :func:`trunk` of one. ``depth`` defaults to every group both have in the
    trunk of ``target`` (a same-spec model's trunk, or all of a trunk model). The groups must match layer for
    layer in weight shapes; everything is checked before a weight is written. ``freeze`` makes the receiving
    groups non-trainable (a BatchNormalization then runs in inference mode, with the copied statistics).
    """
    src, dst = layer_groups(source), layer_groups(target)
    most = min(len(src), trunk_depth(target))
    if depth is None:
        depth = most
    elif isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= most:
        raise ValueError(f"depth={depth!r}: {source.name!r} has {len(src)} layer groups and the trunk of "
                         f"{target.name!r} {trunk_depth(target)}; expected an int in 0..{most}.")
    pairs = []
    for gs, gd in zip(src[:depth], dst[:depth]):
        ws, wd = [layer for layer in gs if layer.weights], [layer for layer in gd if layer.weights]
        shapes = [[tuple(w.shape) for w in layer.weights] for layer in ws]
        if shapes != [[tuple(w.shape) for w in layer.weights] for layer in wd]:
            raise ValueError(f"copy_trunk: group {gs[0].name!r} of {source.name!r} (weight shapes {shapes}) does not "
                             f"match group {gd[0].name!r} of {target.name!r}; build both from the same spec and "
                             "input shape.")
        pairs += list(zip(ws, wd))
    for ls, ld in pairs:
        ld.set_weights(ls.get_weights())
    if freeze:
        for group in dst[:depth]:
            for layer in group:
                layer.trainable = False
    return [ld.name for _, ld in pairs]
