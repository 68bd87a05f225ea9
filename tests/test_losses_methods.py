"""Independent verification of the distillation methods in ``tfkd.losses`` against numpy ports of the authors' code.

Every ``_ref_*`` below is a line-by-line float64 numpy port of the PyTorch code the authors published (the
repository and file are named in each docstring), not of ``tfkd.losses``, so a convention slip (a missing ``T^2``, a
biased std, a different reduction, the pooling order) shows up as a mismatch. Then properties that hold whatever the
implementation: DKD's decomposition of KD, invariances, zeros, and finite gradients (including the ``sqrt`` of
zero distances in RKD).
"""

import numpy as np
import pytest
import tensorflow as tf

from tfkd import losses

RTOL, ATOL = 1e-4, 1e-5
B, C = 8, 10


def _rng(seed):
    return np.random.default_rng(seed)


def _logits(seed, shape=(B, C), scale=3.0):
    return (_rng(seed).normal(size=shape) * scale).astype("float32")


def _np(x):
    return np.asarray(x, dtype=np.float64)


# -- numpy ports of the authors' code (float64) ----------------------------------------------------------------------

def _log_softmax(z, axis=1):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _softmax(z, axis=1):
    return np.exp(_log_softmax(z, axis))


def _kl_div(log_q, p):
    """``F.kl_div(log_q, p, reduction='none')``: ``xlogy(p, p) - p * log_q`` (0 where ``p == 0``)."""
    p = _np(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return plogp - p * log_q


def _ref_normalize(logit):
    """logit-standardization-KD, mdistiller/distillers/KD.py ``normalize``: torch ``std`` is unbiased (ddof=1).

        mean = logit.mean(dim=-1, keepdims=True); stdv = logit.std(dim=-1, keepdims=True)
        return (logit - mean) / (1e-7 + stdv)
    """
    logit = _np(logit)
    mean = logit.mean(-1, keepdims=True)
    stdv = logit.std(-1, ddof=1, keepdims=True)
    return (logit - mean) / (1e-7 + stdv)


def _ref_kd(s, t, temperature, logit_stand=False):
    """mdistiller KD.py / logit-standardization-KD KD.py ``kd_loss``, per example (without the final ``.mean()``)."""
    s = _ref_normalize(s) if logit_stand else _np(s)
    t = _ref_normalize(t) if logit_stand else _np(t)
    log_pred_student = _log_softmax(s / temperature)
    pred_teacher = _softmax(t / temperature)
    return _kl_div(log_pred_student, pred_teacher).sum(1) * temperature**2


def _ref_dkd(s, t, target, alpha, beta, temperature):
    """mdistiller/distillers/DKD.py ``dkd_loss``, per example: the authors' ``size_average=False`` sum divided by
    ``target.shape[0]`` is the batch mean of these values (checked in the test)."""
    s, t = _np(s), _np(t)
    gt_mask = np.zeros_like(s)
    gt_mask[np.arange(len(target)), target] = 1.0
    other_mask = 1.0 - gt_mask

    def cat_mask(p):
        return np.stack([(p * gt_mask).sum(1), (p * other_mask).sum(1)], axis=1)

    pred_student = cat_mask(_softmax(s / temperature))
    pred_teacher = cat_mask(_softmax(t / temperature))
    tckd = _kl_div(np.log(pred_student), pred_teacher).sum(1) * temperature**2
    pred_teacher_part2 = _softmax(t / temperature - 1000.0 * gt_mask)
    log_pred_student_part2 = _log_softmax(s / temperature - 1000.0 * gt_mask)
    nckd = _kl_div(log_pred_student_part2, pred_teacher_part2).sum(1) * temperature**2
    return alpha * tckd + beta * nckd


def _ref_dist(z_s, z_t, tau=1.0, beta=1.0, gamma=1.0):
    """hunto/image_classification_sota lib/models/losses/dist_kd.py (linked from DIST_KD's README) ``DIST.forward``."""

    def cosine_similarity(a, b, eps=1e-8):
        return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + eps)

    def pearson_correlation(a, b, eps=1e-8):
        return cosine_similarity(a - a.mean(1)[:, None], b - b.mean(1)[:, None], eps)

    def inter_class_relation(y_s, y_t):
        return 1 - pearson_correlation(y_s, y_t).mean()

    def intra_class_relation(y_s, y_t):
        return inter_class_relation(y_s.T, y_t.T)

    y_s = _softmax(_np(z_s) / tau)
    y_t = _softmax(_np(z_t) / tau)
    inter_loss = tau**2 * inter_class_relation(y_s, y_t)
    intra_loss = tau**2 * intra_class_relation(y_s, y_t)
    return beta * inter_loss + gamma * intra_loss


def _ref_hint(fs, ft):
    """RepDistiller distiller_zoo/FitNet.py ``HintLoss`` (``nn.MSELoss``), per example: mean over the elements."""
    fs, ft = _np(fs), _np(ft)
    return ((fs - ft) ** 2).reshape(len(fs), -1).mean(1)


def _adaptive_avg_pool2d_nhwc(f, out_hw):
    """``F.adaptive_avg_pool2d`` on a channels-last array: bin ``i`` spans ``[floor(i*H/h), ceil((i+1)*H/h))``."""
    f = _np(f)
    (h_in, w_in), (h, w) = f.shape[1:3], out_hw
    out = np.empty((f.shape[0], h, w, f.shape[3]))
    for i in range(h):
        r0, r1 = (i * h_in) // h, -((-(i + 1) * h_in) // h)
        for j in range(w):
            c0, c1 = (j * w_in) // w, -((-(j + 1) * w_in) // w)
            out[:, i, j, :] = f[:, r0:r1, c0:c1, :].mean(axis=(1, 2))
    return out


def _ref_at(fs, ft, p=2):
    """RepDistiller distiller_zoo/AT.py ``Attention.at_loss`` (same as mdistiller AT.py ``single_stage_at_loss``),
    ported to channels-last, per example (the authors' ``.mean()`` over batch and positions is the batch mean):

        if s_H > t_H: f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))      # the *features* are pooled ...
        elif s_H < t_H: f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
        return (self.at(f_s) - self.at(f_t)).pow(2).mean()              # ... before the attention map
        at(f) = F.normalize(f.pow(self.p).mean(1).view(f.size(0), -1))

    ``|f|^p`` per the spec (the authors write ``f.pow(p)``; identical for even ``p``).
    """
    fs, ft = _np(fs), _np(ft)
    s_hw, t_hw = fs.shape[1:3], ft.shape[1:3]
    if s_hw[0] > t_hw[0]:
        fs = _adaptive_avg_pool2d_nhwc(fs, t_hw)
    elif s_hw[0] < t_hw[0]:
        ft = _adaptive_avg_pool2d_nhwc(ft, s_hw)

    def at(f):
        a = (np.abs(f) ** p).mean(-1).reshape(len(f), -1)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    return ((at(fs) - at(ft)) ** 2).mean(1)


def _ref_pdist(e, eps=1e-12):
    """lenscloth/RKD metric/utils.py ``pdist(e, squared=False)``: clamp, sqrt, then a zero diagonal."""
    e = _np(e)
    e_square = (e**2).sum(1)
    res = np.maximum(e_square[:, None] + e_square[None, :] - 2 * e @ e.T, eps)
    res = np.sqrt(res)
    res[np.arange(len(e)), np.arange(len(e))] = 0
    return res


def _smooth_l1(x, y):
    """``F.smooth_l1_loss`` (beta 1, mean over all elements) = Huber with delta 1."""
    d = np.abs(x - y)
    return np.where(d < 1.0, 0.5 * d**2, d - 0.5).mean()


def _ref_rkd_distance(student, teacher):
    """lenscloth/RKD metric/loss.py ``RkdDistance`` (same in RepDistiller RKD.py): ``d / d[d > 0].mean()``."""
    t_d = _ref_pdist(teacher)
    t_d = t_d / t_d[t_d > 0].mean()
    d = _ref_pdist(student)
    d = d / d[d > 0].mean()
    return _smooth_l1(d, t_d)


def _ref_rkd_angle(student, teacher):
    """lenscloth/RKD metric/loss.py ``RKdAngle``: ``(e.unsqueeze(0) - e.unsqueeze(1))``, ``F.normalize`` (eps 1e-12)
    along the last axis, ``bmm`` with its transpose, all ``N^3`` cosines (zero rows for ``i == j``)."""

    def angles(e):
        e = _np(e)
        d = e[None, :, :] - e[:, None, :]
        n = d / np.maximum(np.linalg.norm(d, axis=2, keepdims=True), 1e-12)
        return np.einsum("ijd,ikd->ijk", n, n).reshape(-1)

    return _smooth_l1(angles(student), angles(teacher))


def _ref_sp(f_s, f_t):
    """RepDistiller distiller_zoo/SP.py ``Similarity.similarity_loss`` (same in mdistiller SP.py)."""
    bsz = f_s.shape[0]
    f_s, f_t = _np(f_s).reshape(bsz, -1), _np(f_t).reshape(bsz, -1)

    def normalize(g):  # torch.nn.functional.normalize, dim=1
        return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)

    G_s = normalize(f_s @ f_s.T)
    G_t = normalize(f_t @ f_t.T)
    G_diff = G_t - G_s
    return (G_diff * G_diff).sum() / (bsz * bsz)


def _ref_binary_kd(s, t, temperature):
    """Bernoulli KL(sigmoid(t/T) || sigmoid(s/T)) summed over the logit axis, times ``T^2`` (from the formula)."""
    s, t = _np(s) / temperature, _np(t) / temperature

    def log_sigmoid(x):
        return -np.logaddexp(0.0, -x)

    lp_t, lq_t, lp_s, lq_s = log_sigmoid(t), log_sigmoid(-t), log_sigmoid(s), log_sigmoid(-s)
    kl = np.exp(lp_t) * (lp_t - lp_s) + np.exp(lq_t) * (lq_t - lq_s)
    return temperature**2 * kl.reshape(len(kl), -1).sum(1)


# -- the references against the formulas of the papers (guards the ports themselves) ---------------------------------

def test_reference_dkd_matches_the_papers_definition():
    """TCKD = KL(b_t || b_s) of (target, rest); NCKD = KL over the non-target classes renormalised (paper eq. 1-4)."""
    s, t, y, T = _np(_logits(1)), _np(_logits(2)), _rng(3).integers(0, C, B), 4.0
    ps, pt = _softmax(s / T), _softmax(t / T)
    rows = np.arange(B)
    bs, bt = ps[rows, y], pt[rows, y]
    tckd = bt * np.log(bt / bs) + (1 - bt) * np.log((1 - bt) / (1 - bs))
    keep = np.ones((B, C), bool)
    keep[rows, y] = False
    hs = ps[keep].reshape(B, C - 1) / (1 - bs)[:, None]
    ht = pt[keep].reshape(B, C - 1) / (1 - bt)[:, None]
    nckd = (ht * np.log(ht / hs)).sum(1)
    np.testing.assert_allclose(_ref_dkd(s, t, y, 1.0, 8.0, T), T**2 * (tckd + 8.0 * nckd), rtol=1e-10)


# -- tfkd.losses against the references ------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 4.0])
@pytest.mark.parametrize("standardize", [False, True])
def test_kd_kl_matches_authors(temperature, standardize):
    s, t = _logits(10), _logits(11)
    got = np.asarray(losses.kd_kl(s, t, temperature, standardize=standardize))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, _ref_kd(s, t, temperature, logit_stand=standardize), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("temperature,alpha,beta", [(4.0, 1.0, 8.0), (1.0, 0.5, 2.0), (2.0, 0.0, 1.0)])
def test_dkd_matches_mdistiller(temperature, alpha, beta):
    s, t = _logits(20), _logits(21)
    y = _rng(22).integers(0, C, B)
    ref = _ref_dkd(s, t, y, alpha, beta, temperature)
    got = np.asarray(losses.dkd(s, t, y, temperature=temperature, alpha=alpha, beta=beta))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)
    one_hot = np.eye(C, dtype="float32")[y]
    got_oh = np.asarray(losses.dkd(s, t, one_hot, temperature=temperature, alpha=alpha, beta=beta))
    np.testing.assert_allclose(got_oh, ref, rtol=RTOL, atol=ATOL)
    # the authors' batch value: size_average=False sum / target.shape[0]
    np.testing.assert_allclose(got.mean(), ref.sum() / len(y), rtol=RTOL, atol=ATOL)


def test_dkd_defaults_are_mdistillers():
    s, t, y = _logits(23), _logits(24), _rng(25).integers(0, C, B)
    np.testing.assert_allclose(np.asarray(losses.dkd(s, t, y)), _ref_dkd(s, t, y, 1.0, 8.0, 4.0), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("temperature,beta,gamma", [(1.0, 1.0, 1.0), (4.0, 2.0, 0.5)])
def test_dist_matches_authors(temperature, beta, gamma):
    s, t = _logits(30), _logits(31)
    got = np.asarray(losses.dist(s, t, temperature=temperature, beta=beta, gamma=gamma))
    assert got.shape == ()
    np.testing.assert_allclose(got, _ref_dist(s, t, temperature, beta, gamma), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape", [(B, 6, 6, 4), (B, 16)])
def test_hint_mse_matches_authors(shape):
    fs, ft = _logits(40, shape, 1.0), _logits(41, shape, 1.0)
    got = np.asarray(losses.hint_mse(fs, ft))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, _ref_hint(fs, ft), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("p", [2, 4, 1])
@pytest.mark.parametrize("cs,ct", [(4, 4), (4, 16)])
def test_attention_transfer_matches_authors_same_size(p, cs, ct):
    fs, ft = _logits(50, (B, 6, 6, cs), 1.0), _logits(51, (B, 6, 6, ct), 1.0)
    got = np.asarray(losses.attention_transfer(fs, ft, p=p))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, _ref_at(fs, ft, p), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("student_hw,teacher_hw", [((6, 6), (3, 3)), ((3, 3), (6, 6))])
def test_attention_transfer_matches_authors_different_sizes(student_hw, teacher_hw):
    """The authors pool the *features* (``F.adaptive_avg_pool2d(f_s, ...)``) and then take ``mean_c f^p``."""
    fs = _logits(52, (B, *student_hw, 4), 1.0)
    ft = _logits(53, (B, *teacher_hw, 8), 1.0)
    got = np.asarray(losses.attention_transfer(fs, ft))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, _ref_at(fs, ft), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("ds,dt", [(16, 16), (12, 32)])
def test_rkd_matches_authors(ds, dt):
    es, et = _logits(60, (B, ds), 1.0), _logits(61, (B, dt), 1.0)
    got_d, got_a = np.asarray(losses.rkd_distance(es, et)), np.asarray(losses.rkd_angle(es, et))
    assert got_d.shape == () and got_a.shape == ()
    np.testing.assert_allclose(got_d, _ref_rkd_distance(es, et), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got_a, _ref_rkd_angle(es, et), rtol=RTOL, atol=ATOL)


def test_rkd_distance_uses_the_huber_branch_too():
    """Distances far from the teacher's (|diff| > 1 after normalisation) exercise ``d - 0.5``."""
    es = _logits(62, (B, 16), 1.0)
    es[0] *= 30.0
    et = _logits(63, (B, 16), 1.0)
    np.testing.assert_allclose(np.asarray(losses.rkd_distance(es, et)), _ref_rkd_distance(es, et), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("shape_s,shape_t",
                         [((B, 6, 6, 4), (B, 6, 6, 4)), ((B, 6, 6, 4), (B, 3, 3, 16)), ((B, 12), (B, 5))])
def test_similarity_preserving_matches_authors(shape_s, shape_t):
    fs, ft = _logits(70, shape_s, 1.0), _logits(71, shape_t, 1.0)
    got = np.asarray(losses.similarity_preserving(fs, ft))
    assert got.shape == ()
    np.testing.assert_allclose(got, _ref_sp(fs, ft), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_binary_kd_matches_formula(k, temperature):
    s, t = _logits(80, (B, k)), _logits(81, (B, k))
    got = np.asarray(losses.binary_kd(s, t, temperature))
    assert got.shape == (B,)
    np.testing.assert_allclose(got, _ref_binary_kd(s, t, temperature), rtol=RTOL, atol=ATOL)


def test_binary_kd_one_logit_equals_two_class_kd():
    """sigmoid(z) is softmax([0, z])[1], so the Bernoulli KL is the 2-class KL."""
    s, t, T = _logits(82, (B, 1)), _logits(83, (B, 1)), 2.0
    zeros = np.zeros_like(s)
    two_s, two_t = np.concatenate([zeros, s], 1), np.concatenate([zeros, t], 1)
    np.testing.assert_allclose(np.asarray(losses.binary_kd(s, t, T)), np.asarray(losses.kd_kl(two_s, two_t, T)),
                               rtol=RTOL, atol=ATOL)


# -- properties ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dkd_decomposes_kd(temperature):
    """Zhao et al. eq. (5): KD = TCKD + (1 - p_t[gt]) * NCKD, per example."""
    s, t = _logits(90), _logits(91)
    y = _rng(92).integers(0, C, B)
    tckd = np.asarray(losses.dkd(s, t, y, temperature=temperature, alpha=1.0, beta=0.0))
    nckd = np.asarray(losses.dkd(s, t, y, temperature=temperature, alpha=0.0, beta=1.0))
    kd = np.asarray(losses.kd_kl(s, t, temperature))
    p_gt = _softmax(_np(t) / temperature)[np.arange(B), y]
    np.testing.assert_allclose(kd, tckd + (1.0 - p_gt) * nckd, rtol=RTOL, atol=ATOL)


def test_kd_kl_standardized_is_invariant_to_shift_and_positive_scale():
    s, t = _logits(100), _logits(101)
    base = np.asarray(losses.kd_kl(s, t, 2.0, standardize=True))
    rng = _rng(102)
    shift_s, shift_t = rng.normal(size=(B, 1)) * 5, rng.normal(size=(B, 1)) * 5
    scale_s, scale_t = rng.uniform(0.2, 5.0, (B, 1)), rng.uniform(0.2, 5.0, (B, 1))
    s2 = (s * scale_s + shift_s).astype("float32")
    t2 = (t * scale_t + shift_t).astype("float32")
    np.testing.assert_allclose(np.asarray(losses.kd_kl(s2, t2, 2.0, standardize=True)), base, rtol=RTOL, atol=ATOL)
    # ... while the plain KD is not
    assert not np.allclose(np.asarray(losses.kd_kl(s2, t2, 2.0)), np.asarray(losses.kd_kl(s, t, 2.0)), rtol=1e-2)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_dist_is_zero_when_student_equals_teacher(temperature):
    """0 up to the authors' ``eps=1e-8`` in the cosine's denominator: at ``T=4`` a column of tempered probabilities
    varies little over the batch, so ``T^2 * eps / ||centred column||^2`` is ~1.4e-5 here, in the authors' code too."""
    s = _logits(110)
    got = np.asarray(losses.dist(s, s.copy(), temperature=temperature))
    assert abs(got) < 1e-4
    np.testing.assert_allclose(got, _ref_dist(s, s, temperature), rtol=0.05, atol=1e-6)


def test_rkd_zero_at_teacher_and_invariant_to_student_scale():
    es, et = _logits(120, (B, 16), 1.0), _logits(121, (B, 24), 1.0)
    np.testing.assert_allclose(np.asarray(losses.rkd_distance(et, et.copy())), 0.0, atol=ATOL)
    np.testing.assert_allclose(np.asarray(losses.rkd_angle(et, et.copy())), 0.0, atol=ATOL)
    for fn in (losses.rkd_distance, losses.rkd_angle):
        base = np.asarray(fn(es, et))
        assert base > 1e-3
        for c in (0.1, 7.0):
            np.testing.assert_allclose(np.asarray(fn((es * c).astype("float32"), et)), base, rtol=RTOL, atol=ATOL)


def test_attention_transfer_invariant_to_channel_count():
    fs, ft = _logits(130, (B, 6, 6, 4), 1.0), _logits(131, (B, 6, 6, 8), 1.0)
    base = np.asarray(losses.attention_transfer(fs, ft))
    doubled = np.concatenate([ft, ft], axis=-1)
    np.testing.assert_allclose(np.asarray(losses.attention_transfer(fs, doubled)), base, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(losses.attention_transfer(ft, ft.copy())), 0.0, atol=ATOL)


def test_similarity_preserving_zero_at_teacher_and_invariant_to_student_scale():
    fs, ft = _logits(140, (B, 6, 6, 4), 1.0), _logits(141, (B, 3, 3, 16), 1.0)
    np.testing.assert_allclose(np.asarray(losses.similarity_preserving(ft, ft.copy())), 0.0, atol=ATOL)
    base = np.asarray(losses.similarity_preserving(fs, ft))
    assert base > 1e-3
    for c in (0.05, 9.0):
        np.testing.assert_allclose(np.asarray(losses.similarity_preserving((fs * c).astype("float32"), ft)), base,
                                   rtol=RTOL, atol=ATOL)


# -- gradients -------------------------------------------------------------------------------------------------------

def _student_grad(fn, student, *rest, **kwargs):
    x = tf.Variable(student)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn(x, *rest, **kwargs))
    g = tape.gradient(loss, x)
    assert g is not None, fn.__name__
    return np.asarray(loss), np.asarray(g)


_LOGITS_S, _LOGITS_T = _logits(150), _logits(151)
_LABELS = _rng(152).integers(0, C, B)
_MAP_S, _MAP_T = _logits(153, (B, 6, 6, 4), 1.0), _logits(154, (B, 3, 3, 8), 1.0)
_EMB_S, _EMB_T = _logits(155, (B, 16), 1.0), _logits(156, (B, 24), 1.0)

_GRAD_CASES = {
    "kd_kl": (losses.kd_kl, _LOGITS_S, (_LOGITS_T, 4.0), {}),
    "kd_kl_standardized": (losses.kd_kl, _LOGITS_S, (_LOGITS_T, 4.0), {"standardize": True}),
    "dkd": (losses.dkd, _LOGITS_S, (_LOGITS_T, _LABELS), {}),
    "dist": (losses.dist, _LOGITS_S, (_LOGITS_T,), {"temperature": 4.0}),
    "dist_s_eq_t": (losses.dist, _LOGITS_T, (_LOGITS_T.copy(),), {}),
    "hint_mse": (losses.hint_mse, _MAP_T, (_MAP_T * 0.5,), {}),
    "attention_transfer_student_larger": (losses.attention_transfer, _MAP_S, (_MAP_T,), {}),
    "attention_transfer_teacher_larger": (losses.attention_transfer, _MAP_T, (_MAP_S,), {}),
    "attention_transfer_s_eq_t": (losses.attention_transfer, _MAP_T, (_MAP_T.copy(),), {}),
    "rkd_distance": (losses.rkd_distance, _EMB_S, (_EMB_T,), {}),
    "rkd_distance_s_eq_t": (losses.rkd_distance, _EMB_T, (_EMB_T.copy(),), {}),
    "rkd_angle": (losses.rkd_angle, _EMB_S, (_EMB_T,), {}),
    "rkd_angle_s_eq_t": (losses.rkd_angle, _EMB_T, (_EMB_T.copy(),), {}),
    "similarity_preserving": (losses.similarity_preserving, _MAP_S, (_MAP_T,), {}),
    "similarity_preserving_s_eq_t": (losses.similarity_preserving, _MAP_T, (_MAP_T.copy(),), {}),
    "binary_kd": (losses.binary_kd, _logits(157, (B, 1)), (_logits(158, (B, 1)), 2.0), {}),
}


@pytest.mark.parametrize("case", sorted(_GRAD_CASES))
def test_gradients_are_finite(case):
    fn, student, rest, kwargs = _GRAD_CASES[case]
    loss, g = _student_grad(fn, student, *rest, **kwargs)
    assert np.all(np.isfinite(loss)), case
    assert np.all(np.isfinite(g)), case
    if not case.endswith("_s_eq_t"):
        assert np.abs(g).max() > 0, case


def test_rkd_gradient_matches_finite_differences():
    """The gradient through the clamped sqrt and the normalised differences is the true one (central differences
    of the float64 reference)."""
    es, et = _EMB_S[:5, :6], _EMB_T[:5]
    for fn, ref in ((losses.rkd_distance, _ref_rkd_distance), (losses.rkd_angle, _ref_rkd_angle)):
        _, g = _student_grad(fn, es, et)
        num = np.zeros(es.shape)
        h = 1e-5
        for idx in np.ndindex(es.shape):
            up, dn = _np(es).copy(), _np(es).copy()
            up[idx] += h
            dn[idx] -= h
            num[idx] = (ref(up, et) - ref(dn, et)) / (2 * h)
        np.testing.assert_allclose(g, num, rtol=1e-3, atol=1e-5)
