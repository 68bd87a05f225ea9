"""Corrupted test sets for robustness, the way ImageNet-C / CIFAR-10-C do it, in miniature.

Three corruptions at five severities each. The severity constants are those of CIFAR-10-C (Hendrycks & Dietterich,
ICLR 2019, ``make_cifar_c.py``), which were chosen for 32 x 32 images and so suit MNIST-sized ones too:

- ``noise``: additive Gaussian noise, std 0.04 .. 0.10 of the [0, 1] range;
- ``blur``: Gaussian blur, sigma 0.4 .. 1.0 pixels;
- ``contrast``: contrast kept around each image's mean, 0.75 .. 0.15 of the original.

Example:

    from tfkd import data
    x_noisy = data.corrupt(x_test, "noise", severity=3, seed=0)
    sets = data.corrupted_test_set(x_test, y_test)           # {("noise", 1): (x, y), ..., ("contrast", 5): (x, y)}
    teacher.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    accuracy = {key: teacher.evaluate(x, y, verbose=0)[1] for key, (x, y) in sets.items()}
"""

from __future__ import annotations

import numpy as np

from tfkd.domains import _check_images, _clip, gaussian_blur, gaussian_noise

SEVERITIES: dict[str, tuple] = {
    "noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # Gaussian noise std
    "blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # Gaussian blur sigma, pixels
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # contrast factor around each image's mean
}
KINDS = tuple(SEVERITIES)


def corrupt(x, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """``x`` (``N x H x W x C`` float in [0, 1]) corrupted by ``kind`` at ``severity`` 1 (mild) .. 5 (strong).

    Deterministic: the same ``seed`` gives the same noise; blur and contrast use no randomness.

    Example:

        x5 = data.corrupt(x_test, "contrast", 5)
    """
    if kind not in SEVERITIES:
        raise ValueError(f"kind={kind!r} is not a corruption tfkd knows; expected one of {list(KINDS)}.")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 1 <= severity <= 5:
        raise ValueError(f"severity={severity!r}: expected an integer from 1 (mild) to 5 (strong).")
    x = _check_images(x).astype(np.float32, copy=False)
    level = SEVERITIES[kind][int(severity) - 1]
    if kind == "noise":
        return gaussian_noise(x, level, seed)
    if kind == "blur":
        return gaussian_blur(x, level)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _clip((x - mean) * level + mean)


def corrupted_test_set(x, y, kinds=KINDS, severities=(1, 3, 5), seed: int = 0) -> dict:
    """``{(kind, severity): (x_corrupted, y)}`` for every kind and severity asked for.

    Every noise severity draws from the same ``seed``, so severities differ only in strength (paired
    comparisons). Memory: one copy of ``x`` per entry.

    Example:

        sets = data.corrupted_test_set(x_test, y_test, kinds=("noise",), severities=(1, 5))
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} images but y has {len(y)} labels; they must match.")
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    return {(kind, int(s)): (corrupt(x, kind, s, seed=seed), y) for kind in kinds for s in severities}
