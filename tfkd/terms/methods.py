"""Named distillation methods as term lists, with the weights their authors' code uses on CIFAR.

``method_terms("dkd", teacher, student, epochs=30)`` gives ``(terms, hard_weight)`` for a Distiller, so recipes,
benchmarks and tuners name a method instead of re-writing it. Feature methods pick their layers with
:func:`tfkd.terms.auto_pairs` unless ``pairs`` is given.

| method | terms | hard weight | needs |
|---|---|---|---|
| ``kd`` | ``KD(T, weight=alpha)`` | ``1 - alpha`` | logits (cache ok) |
| ``kd_std`` | ``KD(T, standardize=True, weight=alpha)`` | ``1 - alpha`` | logits (cache ok) |
| ``dkd`` | ``DKD(4, alpha=1, beta=8, warm-up 1/12 of the epochs)`` | 1 | logits, labels |
| ``dist`` | ``DIST(T=1, beta=1, gamma=1)`` | 1 | logits (batch-level) |
| ``fitnet`` | ``Hint(middle pair, weight=100)`` | 1 | live teacher, layers |
| ``at`` | ``Attention(all stage pairs, weight=1000)`` | 1 | live teacher, spatial layers |
| ``rkd`` | ``RKD(penultimate, distance 25, angle 50)`` | 1 | live teacher, layers |
| ``sp`` | ``SimilarityPreserving(last pair, weight=3000)`` | 1 | live teacher, layers |

Example:

    terms, hard_weight = tfkd.terms.method_terms("dkd", epochs=30)
    distiller = tfkd.Distiller(teacher, student, terms=terms, hard_weight=hard_weight)
"""

from __future__ import annotations

from tfkd.terms.features import RKD, Attention, Hint, SimilarityPreserving
from tfkd.terms.logits import DIST, DKD, KD
from tfkd.terms.pairs import auto_pairs

LOGIT_METHODS = ("kd", "kd_std", "dkd", "dist")
FEATURE_METHODS = ("fitnet", "at", "rkd", "sp")
METHODS = LOGIT_METHODS + FEATURE_METHODS


def needs_live_teacher(method: str) -> bool:
    """Feature methods read teacher layers, so cached logits cannot serve them."""
    _check(method)
    return method in FEATURE_METHODS


def _check(method):
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a known distillation method; expected one of {list(METHODS)}.")


def _penultimate(model):
    return model.layers[-2].name


def method_terms(method, teacher=None, student=None, *, temperature=4.0, alpha=0.5, epochs=None, pairs=None,
                 verbose=False):
    """``(terms, hard_weight)`` for ``method`` (see the table in this module's docstring).

    ``temperature`` and ``alpha`` apply to ``kd`` and ``kd_std``; ``epochs`` sets DKD's warm-up to the same share
    of training as the authors' 20 of 240 epochs (at least 1). Feature methods need ``teacher`` and ``student``
    (Functional or Sequential) for their layers, or ``pairs``.
    """
    _check(method)
    if method == "kd":
        return [KD(temperature, weight=alpha)], 1.0 - alpha
    if method == "kd_std":
        return [KD(temperature, standardize=True, weight=alpha)], 1.0 - alpha
    if method == "dkd":
        warmup = max(1, round((epochs or 240) * 20 / 240))
        return [DKD(temperature=4.0, alpha=1.0, beta=8.0, warmup_epochs=warmup)], 1.0
    if method == "dist":
        return [DIST(temperature=1.0, beta=1.0, gamma=1.0)], 1.0
    if teacher is None or student is None:
        raise ValueError(f"method={method!r} taps teacher and student layers: pass both models (or pairs=).")
    if method == "rkd":
        t, s = pairs[-1] if pairs else (_penultimate(teacher), _penultimate(student))
        return [RKD(t, s, distance_weight=25.0, angle_weight=50.0)], 1.0
    pairs = pairs or auto_pairs(teacher, student, verbose=verbose)
    if method == "fitnet":
        return [Hint(*pairs[(len(pairs) - 1) // 2], weight=100.0)], 1.0
    if method == "at":
        return [Attention(pairs, weight=1000.0)], 1.0
    return [SimilarityPreserving([pairs[-1]], weight=3000.0)], 1.0
