"""Pseudo-labels for self-training: confidence filtering and class balancing (Xie et al., 2020).

Example:

    from tfkd import pseudo
    x_unlabeled = x_train                                              # images whose labels are not used
    probs = keras.ops.softmax(teacher.predict(x_unlabeled, verbose=0)).numpy()   # the teacher sees clean inputs
    sel = pseudo.select(probs, threshold=0.3, balance=True, seed=0)
    x_pseudo, targets = x_unlabeled[sel.indices], probs[sel.indices]    # duplicates where a class was short
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Selection:
    indices: np.ndarray          # rows of the unlabeled set to train on (repeats where balancing duplicated)
    passed_per_class: list       # per predicted class: how many passed the confidence threshold
    kept_per_class: list         # per predicted class: how many rows are in ``indices`` after balancing


def select(probs, threshold=0.3, balance=True, per_class=None, seed=0) -> Selection:
    """Keep rows whose top probability is ``>= threshold``; with ``balance``, make every class equally frequent.

    Balancing follows Noisy Student: a class with more than ``per_class`` kept rows keeps its most confident
    ``per_class``; a class with fewer is duplicated (cycled) up to ``per_class``. ``per_class`` defaults to the mean
    count of the classes that passed. A class with no confident row stays empty (nothing to duplicate).
    """
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs has shape {probs.shape}; expected [num_examples, num_classes] probabilities.")
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"threshold={threshold} must be in [0, 1).")
    num_classes = probs.shape[1]
    conf, pred = probs.max(1), probs.argmax(1)
    passed = np.flatnonzero(conf >= threshold)
    passed_counts = np.bincount(pred[passed], minlength=num_classes).tolist()
    if not balance or len(passed) == 0:
        return Selection(passed, passed_counts, passed_counts)
    nonempty = [c for c in passed_counts if c > 0]
    target = int(per_class) if per_class is not None else int(round(np.mean(nonempty)))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        idx = passed[pred[passed] == c]
        if len(idx) == 0:
            continue
        idx = idx[np.argsort(-conf[idx], kind="stable")]  # most confident first
        if len(idx) >= target:
            chosen.append(idx[:target])
        else:
            chosen.append(np.resize(rng.permutation(idx), target))  # cycle through the shuffled rows
    indices = np.concatenate(chosen)
    kept = np.bincount(pred[indices], minlength=num_classes).tolist()
    return Selection(indices, passed_counts, kept)
