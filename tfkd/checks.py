"""Is the teacher worth distilling, and is it fed what it was trained on? Checked on validation data before any work.

A teacher fed the wrong input range fails silently: a model with ``Rescaling(1/255)`` inside, given images already
in [0, 1], predicts one class, and a distillation run from it "loses" by tens of points with no warning.
:func:`check_teacher` evaluates the teacher on the validation split as it will be fed, and on the same images at
the other usual scale ([0, 1] <-> [0, 255]); it raises :class:`TeacherCheckError` when the teacher is at chance, or
clearly better on the other scale, and says how to fix it.

Example:

    import keras, numpy as np
    from tfkd import checks
    x = np.random.default_rng(0).random((200, 6)).astype("float32"); y = (x[:, 0] > 0.5).astype("int32")
    teacher = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    try:
        checks.check_teacher(teacher, x, y, num_classes=2)
    except checks.TeacherCheckError as err:   # an untrained teacher is near chance
        print(err)
"""

from __future__ import annotations

import numpy as np

INPUT_SCALES = {"unit": 1.0, "255": 255.0}  # what the pixels of the data are multiplied by before a model sees them
# A teacher is "at chance" when it beats the majority class by less than this (in accuracy), and "fed the wrong
# scale" when the other scale beats the given one by more than this.
CHANCE_MARGIN = 0.05
SCALE_MARGIN = 0.10


class TeacherCheckError(ValueError):
    """The teacher is at chance on validation data, or works on another input scale than it is fed."""


def _accuracy(model, x, y, batch_size=512) -> float:
    logits = model.predict(x, batch_size=batch_size, verbose=0)
    pred = (logits[:, 0] > 0).astype(int) if logits.shape[-1] == 1 else logits.argmax(-1)
    return float(np.mean(pred == np.asarray(y).reshape(-1)))


def check_teacher(teacher, x_val, y_val, *, num_classes, input_scale="unit", allow_weak=False, what="teacher"):
    """Validation accuracy of ``teacher`` as fed, and at the other input scale; raises if it is not worth distilling.

    Args:
        x_val, y_val: validation inputs exactly as the teacher will be fed them, and integer labels.
        input_scale: ``"unit"`` (pixels in [0, 1]) or ``"255"`` (pixels in [0, 255]): what ``x_val`` holds;
            ``None`` for inputs that are not pixels (tabular features), which are checked at chance only.
        allow_weak: report, never raise (for the rare teacher that is meant to be weak).

    Returns ``{"val_accuracy", "chance", "other_scale", "other_scale_val_accuracy"}``.
    """
    if input_scale is not None and input_scale not in INPUT_SCALES:
        raise ValueError(f"input_scale={input_scale!r}; expected one of {list(INPUT_SCALES)}, or None for inputs "
                         "that are not pixels.")
    y = np.asarray(y_val).reshape(-1).astype(int)
    chance = float(np.bincount(y, minlength=max(int(num_classes), 2)).max() / max(len(y), 1))
    acc = _accuracy(teacher, x_val, y)
    other = acc_other = None
    if input_scale is not None:
        other = "255" if input_scale == "unit" else "unit"
        x_other = np.asarray(x_val, np.float32) * (INPUT_SCALES[other] / INPUT_SCALES[input_scale])
        acc_other = _accuracy(teacher, x_other, y)
    report = {"val_accuracy": acc, "chance": chance, "other_scale": other, "other_scale_val_accuracy": acc_other}
    if allow_weak:
        return report
    scale_name = {"unit": "[0, 1]", "255": "[0, 255]"}
    if acc_other is not None and acc_other > acc + SCALE_MARGIN:
        factor = INPUT_SCALES[other] / INPUT_SCALES[input_scale]
        raise TeacherCheckError(
            f"the {what} scores {acc:.3f} on the validation images fed in {scale_name[input_scale]} but "
            f"{acc_other:.3f} on the same images in {scale_name[other]}: it was trained on the other input scale "
            f"(e.g. a Rescaling(1/255) layer inside expects [0, 255]). Feed it what it was trained on: "
            f"--input-scale {other} (Python: multiply the inputs by {factor:g}).")
    if acc < chance + CHANCE_MARGIN:
        raise TeacherCheckError(
            f"the {what} scores {acc:.3f} on the validation split, at chance (the largest class is {chance:.3f} of "
            f"it{'' if other is None else f'; {scale_name[other]} inputs give {acc_other:.3f}'}): distilling from it "
            "teaches nothing. Check the "
            "teacher file, its preprocessing and the dataset it was trained on; --allow-weak-teacher runs anyway.")
    return report
