"""Distillation (soft) losses as small pure functions of student and teacher logits.

Every loss here has the signature ``loss(student_logits, teacher_logits, temperature) -> per_example``:

- ``student_logits``, ``teacher_logits``: ``[batch, num_classes]`` logits (never probabilities).
- ``temperature``: a positive scalar (Python float or scalar tensor).
- returns a ``[batch]`` float32 tensor, one value per example, *unreduced*, so the caller can apply sample weights
  and reduce the same way as the hard loss (``keras`` "sum over batch size").

Only TensorFlow is imported (no Keras), so the pruning/QAT track, which runs under legacy Keras, can use them too.

Example:

    import numpy as np
    from tfkd import losses
    s = np.array([[2.0, 0.5, -1.0]], "float32")
    t = np.array([[3.0, 0.0, -2.0]], "float32")
    losses.kd_kl(s, t, temperature=4.0)   # T^2 * KL(softmax(t/T) || softmax(s/T)), shape [1]
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

SoftLoss = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]


def _tempered_log_probs(student_logits, teacher_logits, temperature):
    s = tf.cast(student_logits, tf.float32)
    t = tf.cast(teacher_logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    return tf.nn.log_softmax(s / temperature, axis=-1), tf.nn.log_softmax(t / temperature, axis=-1), temperature


def kd_kl(student_logits, teacher_logits, temperature=1.0, standardize=False):
    """Hinton et al. (2015): ``T^2 * KL(softmax(t/T) || softmax(s/T))`` per example, shape ``[batch]``.

    The ``T^2`` factor keeps the gradient magnitude of the soft term roughly independent of ``T``, so ``alpha``
    means the same thing at every temperature. Computed from log-softmax for stability: a teacher probability
    that underflows to 0 contributes exactly 0. ``standardize=True`` z-scores both logit rows first
    (:func:`standardize_logits`, Sun et al. 2024).
    """
    if standardize:
        student_logits, teacher_logits = standardize_logits(student_logits), standardize_logits(teacher_logits)
    log_ps, log_pt, temperature = _tempered_log_probs(student_logits, teacher_logits, temperature)
    kl = tf.reduce_sum(tf.exp(log_pt) * (log_pt - log_ps), axis=-1)
    return temperature * temperature * kl


def soft_cross_entropy(student_logits, teacher_logits, temperature=1.0):
    """``T^2 * H(softmax(t/T), softmax(s/T))`` per example, shape ``[batch]``.

    Equals :func:`kd_kl` plus the teacher's entropy (a constant for the student), so the gradients are identical;
    the value is what frameworks that "cross-entropy with soft targets" report.
    """
    log_ps, log_pt, temperature = _tempered_log_probs(student_logits, teacher_logits, temperature)
    return -temperature * temperature * tf.reduce_sum(tf.exp(log_pt) * log_ps, axis=-1)


def logit_mse(student_logits, teacher_logits, temperature=None):
    """Mean squared difference of raw logits per example, shape ``[batch]`` (mean over classes).

    Logit matching (Ba & Caruana 2014; Li et al. 2017 for domain adaptation): softmax flattens the differences
    between wrong classes, logits keep them. ``temperature`` is accepted for a uniform signature and ignored.
    """
    del temperature
    s = tf.cast(student_logits, tf.float32)
    t = tf.cast(teacher_logits, tf.float32)
    return tf.reduce_mean(tf.square(s - t), axis=-1)


# -- logit terms beyond Hinton's KD ----------------------------------------------------------------------------------

def standardize_logits(logits, eps=1e-7):
    """Z-score each row over the classes: ``(z - mean) / (std + eps)``, std with ``ddof=1`` as in the authors' code.

    Sun et al. (CVPR 2024), "Logit Standardization in Knowledge Distillation": the student then only has to match
    the teacher's logit *relations*, not their scale. Shape preserved, ``[batch, num_classes]``.
    """
    z = tf.cast(logits, tf.float32)
    n = tf.cast(tf.shape(z)[-1], tf.float32)
    centred = z - tf.reduce_mean(z, axis=-1, keepdims=True)
    std = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=-1, keepdims=True) / tf.maximum(n - 1.0, 1.0))
    return centred / (std + eps)


def _as_one_hot(labels, num_classes):
    """Sparse ``[batch]``/``[batch, 1]`` class indices or one-hot ``[batch, C]`` labels as a float one-hot."""
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] == num_classes and num_classes != 1:
        return tf.cast(labels, tf.float32)
    return tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes, dtype=tf.float32)


def dkd(student_logits, teacher_logits, labels, temperature=4.0, alpha=1.0, beta=8.0):
    """Decoupled KD (Zhao et al., CVPR 2022): ``alpha * TCKD + beta * NCKD`` per example, shape ``[batch]``.

    TCKD is the binary KL between teacher and student of (target class, all others); NCKD the KL between their
    distributions over the non-target classes alone; both are multiplied by ``T^2``, as in mdistiller's ``DKD.py``
    (which masks the target logit with ``-1000`` for NCKD; here the target is excluded exactly). ``labels``: class
    indices ``[batch]`` or one-hot ``[batch, C]``. Property: ``kd_kl = TCKD + (1 - p_t[target]) * NCKD``.

    References: Zhao, Cui, Song, Qiu, Liang. Decoupled Knowledge Distillation. CVPR 2022.
    """
    s = tf.cast(student_logits, tf.float32)
    t = tf.cast(teacher_logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    gt = _as_one_hot(labels, tf.compat.dimension_value(s.shape[-1]) or tf.shape(s)[-1])
    log_ps, log_pt = tf.nn.log_softmax(s / temperature, -1), tf.nn.log_softmax(t / temperature, -1)
    # Binary (target, rest) distributions in log space: log p_gt and log(1 - p_gt) = logsumexp over the others.
    neg = tf.float32.min / 4.0
    log_s_gt = tf.reduce_sum(log_ps * gt, -1)
    log_t_gt = tf.reduce_sum(log_pt * gt, -1)
    log_s_rest = tf.reduce_logsumexp(tf.where(gt > 0, neg, log_ps), -1)
    log_t_rest = tf.reduce_logsumexp(tf.where(gt > 0, neg, log_pt), -1)
    tckd = tf.exp(log_t_gt) * (log_t_gt - log_s_gt) + tf.exp(log_t_rest) * (log_t_rest - log_s_rest)
    # Distributions over the non-target classes: the tempered softmax renormalised without the target.
    log_ps_nt = tf.nn.log_softmax(tf.where(gt > 0, neg, s / temperature), -1)
    log_pt_nt = tf.nn.log_softmax(tf.where(gt > 0, neg, t / temperature), -1)
    nckd = tf.reduce_sum(tf.where(gt > 0, 0.0, tf.exp(log_pt_nt) * (log_pt_nt - log_ps_nt)), -1)
    return temperature * temperature * (alpha * tckd + beta * nckd)


def _pearson_rows(a, b, eps=1e-8):
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (cosine of the centred rows)."""
    a = a - tf.reduce_mean(a, axis=-1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=-1, keepdims=True)
    return tf.reduce_sum(a * b, -1) / (tf.norm(a, axis=-1) * tf.norm(b, axis=-1) + eps)


def dist(student_logits, teacher_logits, temperature=1.0, beta=1.0, gamma=1.0):
    """DIST (Huang et al., NeurIPS 2022): relation matching of tempered probabilities; one scalar for the batch.

    ``T^2 * (beta * (1 - mean_i pearson(p_s[i, :], p_t[i, :])) + gamma * (1 - mean_c pearson(p_s[:, c], p_t[:, c])))``
    — the inter-class term matches each example's ranking of the classes, the intra-class term each class's
    ranking of the examples, so the student need not match the teacher's exact probabilities. The intra-class term
    couples the examples of a batch, so the value is per batch (sample weights cannot apply per example).

    References: Huang, You, Wang, Qian, Xu. Knowledge Distillation from A Stronger Teacher. NeurIPS 2022.
    """
    temperature = tf.cast(temperature, tf.float32)
    ps = tf.nn.softmax(tf.cast(student_logits, tf.float32) / temperature, -1)
    pt = tf.nn.softmax(tf.cast(teacher_logits, tf.float32) / temperature, -1)
    inter = 1.0 - tf.reduce_mean(_pearson_rows(ps, pt))
    intra = 1.0 - tf.reduce_mean(_pearson_rows(tf.transpose(ps), tf.transpose(pt)))
    return temperature * temperature * (beta * inter + gamma * intra)


def binary_kd(student_logits, teacher_logits, temperature=1.0):
    """KD for sigmoid outputs: ``T^2 * sum_k KL(Bern(sigmoid(t_k/T)) || Bern(sigmoid(s_k/T)))``, shape ``[batch]``.

    For one-logit binary classifiers (and independent multi-label logits), where a softmax over one logit is the
    constant 1 and :func:`kd_kl` would be 0. Computed from ``log_sigmoid`` for stability.
    """
    temperature = tf.cast(temperature, tf.float32)
    s = tf.cast(student_logits, tf.float32) / temperature
    t = tf.cast(teacher_logits, tf.float32) / temperature
    log_pt, log_qt = tf.math.log_sigmoid(t), tf.math.log_sigmoid(-t)
    log_ps, log_qs = tf.math.log_sigmoid(s), tf.math.log_sigmoid(-s)
    kl = tf.exp(log_pt) * (log_pt - log_ps) + tf.exp(log_qt) * (log_qt - log_qs)
    kl = tf.reshape(kl, [tf.shape(kl)[0], -1])
    return temperature * temperature * tf.reduce_sum(kl, -1)


# -- feature terms ---------------------------------------------------------------------------------------------------

def _flatten(f):
    f = tf.cast(f, tf.float32)
    return tf.reshape(f, [tf.shape(f)[0], -1])


def hint_mse(student_features, teacher_features):
    """FitNets hint (Romero et al., ICLR 2015): mean squared difference over all feature elements, ``[batch]``.

    Shapes must be equal (an adapter, see :class:`tfkd.terms.Hint`, maps the student's features first).
    """
    fs, ft = _flatten(student_features), _flatten(teacher_features)
    return tf.reduce_mean(tf.square(fs - ft), -1)


def pool_to(features, size):
    """Average-pool ``[batch, H, W, C]`` maps to ``size = (h, w)`` (adaptive average pooling, differentiable).

    Whole-number ratios pool exact blocks (as torch's ``adaptive_avg_pool2d``); other ratios fall back to an
    antialiased bilinear resize. A map already of that size is returned unchanged.
    """
    f = tf.cast(features, tf.float32)
    (H, W), (h, w) = f.shape[1:3], size
    if (H, W) == (h, w):
        return f
    if H % h == 0 and W % w == 0:
        return tf.nn.avg_pool2d(f, (H // h, W // w), (H // h, W // w), "VALID")
    return tf.image.resize(f, (h, w), method="bilinear", antialias=True)


def attention_map(features, p=2):
    """Spatial attention of a ``[batch, H, W, C]`` map: ``mean_c |F|^p``, flattened and L2-normalised per example,
    ``[batch, H * W]``."""
    f = tf.cast(features, tf.float32)
    if f.shape.rank != 4:
        raise ValueError(f"attention transfer needs [batch, height, width, channels] feature maps; got shape "
                         f"{f.shape}. Tap a convolutional layer, not a flattened or dense one.")
    a = tf.reduce_mean(tf.pow(tf.abs(f), p), axis=-1)
    return tf.math.l2_normalize(_flatten(a), axis=-1, epsilon=1e-12)


def attention_transfer(student_features, teacher_features, p=2):
    """Attention transfer (Zagoruyko & Komodakis, ICLR 2017), ``[batch]``.

    Per example: the L2-normalised flattened map ``mean over channels of |F|^p`` of each model, then the mean squared
    difference over positions. Channel counts may differ. When the spatial sizes differ, the larger *feature map* is
    average-pooled (:func:`pool_to`) to the smaller one first, as in the authors' and mdistiller's code. The authors
    use ``beta = 1000/2`` on the mean; :class:`tfkd.terms.Attention` defaults to ``weight=1000``.
    """
    hs, ht = tuple(student_features.shape[1:3]), tuple(teacher_features.shape[1:3])
    if None not in (*hs, *ht) and hs != ht:
        size = (min(hs[0], ht[0]), min(hs[1], ht[1]))
        student_features, teacher_features = pool_to(student_features, size), pool_to(teacher_features, size)
    return tf.reduce_mean(tf.square(attention_map(student_features, p) - attention_map(teacher_features, p)), -1)


def _pairwise_distances(e, eps=1e-12):
    """Euclidean distances ``[batch, batch]`` with an exact 0 diagonal; the clamp keeps the sqrt differentiable."""
    sq = tf.reduce_sum(tf.square(e), -1)
    d2 = tf.maximum(sq[:, None] + sq[None, :] - 2.0 * tf.matmul(e, e, transpose_b=True), eps)
    n = tf.shape(e)[0]
    return tf.sqrt(d2) * (1.0 - tf.eye(n))


def _huber(x, y):
    d = tf.abs(x - y)
    return tf.reduce_mean(tf.where(d < 1.0, 0.5 * tf.square(d), d - 0.5))


def _mean_positive(d):
    positive = tf.cast(d > 0, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(d * positive), tf.reduce_sum(positive))


def rkd_distance(student_embeddings, teacher_embeddings):
    """RKD distance loss (Park et al., CVPR 2019): one scalar for the batch.

    Huber (delta 1) between the student's and the teacher's pairwise Euclidean distances, each divided by its mean
    positive distance, averaged over all ``batch^2`` pairs (as in the authors' code). Embeddings ``[batch, ...]``
    are flattened; their widths may differ. A relation over the batch: sample weights do not apply.
    """
    es, et = _flatten(student_embeddings), tf.stop_gradient(_flatten(teacher_embeddings))
    ds, dt = _pairwise_distances(es), _pairwise_distances(et)
    return _huber(tf.math.divide_no_nan(ds, _mean_positive(ds)), tf.math.divide_no_nan(dt, _mean_positive(dt)))


def _angles(e):
    """Cosines of the angles ``[batch^3]``: ``<e_i - e_j, e_k - e_j>`` of unit difference vectors."""
    diff = e[None, :, :] - e[:, None, :]  # [j, i, d] = e_i - e_j
    unit = diff / tf.maximum(tf.norm(diff, axis=-1, keepdims=True), 1e-12)
    return tf.reshape(tf.matmul(unit, unit, transpose_b=True), [-1])


def rkd_angle(student_embeddings, teacher_embeddings):
    """RKD angle loss (Park et al., CVPR 2019): one scalar for the batch.

    Huber (delta 1) between the cosines of the angles each triplet of embeddings forms, averaged over all
    ``batch^3`` triplets (as in the authors' code). Memory grows as ``batch^2 * width``. Sample weights do not apply.
    """
    es, et = _flatten(student_embeddings), tf.stop_gradient(_flatten(teacher_embeddings))
    return _huber(_angles(es), _angles(et))


def similarity_preserving(student_features, teacher_features):
    """Similarity-preserving KD (Tung & Mori, ICCV 2019): one scalar for the batch.

    ``||normalize_rows(Fs Fs^T) - normalize_rows(Ft Ft^T)||_F^2 / batch^2`` with the features flattened per
    example; feature shapes may differ. A relation over the batch: sample weights do not apply.
    """
    fs, ft = _flatten(student_features), _flatten(teacher_features)
    gs = tf.math.l2_normalize(tf.matmul(fs, fs, transpose_b=True), axis=-1, epsilon=1e-12)
    gt = tf.math.l2_normalize(tf.matmul(ft, ft, transpose_b=True), axis=-1, epsilon=1e-12)
    n = tf.cast(tf.shape(fs)[0], tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(tf.square(gt - gs)), n * n)


_REGISTRY: dict[str, SoftLoss] = {
    "kl": kd_kl,
    "kd_kl": kd_kl,
    "soft_cross_entropy": soft_cross_entropy,
    "soft_ce": soft_cross_entropy,
    "mse": logit_mse,
    "logit_mse": logit_mse,
}


def get(identifier: str | SoftLoss) -> SoftLoss:
    """Resolve a soft loss by name (``"kl"``, ``"soft_cross_entropy"``, ``"mse"``) or pass a callable through."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _REGISTRY:
        return _REGISTRY[identifier]
    raise ValueError(
        f"distill_loss={identifier!r} is not a known distillation loss; expected one of "
        f"{sorted(set(_REGISTRY))} or a callable (student_logits, teacher_logits, temperature) -> [batch] tensor."
    )


def name_of(fn: SoftLoss) -> str | None:
    """The canonical registry name of a built-in loss, or ``None`` for a user callable."""
    for name in ("kl", "soft_cross_entropy", "mse"):
        if _REGISTRY[name] is fn:
            return name
    return None
