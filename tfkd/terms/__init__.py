"""Distillation terms: a Distiller's loss is ``hard_weight * hard + sum(weight_i * term_i) + regularisation``.

Logit terms (cached teacher logits work): :class:`KD` (``standardize=True``: logit standardisation),
:class:`LogitMSE`, :class:`DKD` (needs labels), :class:`DIST` (batch-level), :class:`BinaryKD`, :class:`SoftLoss`.
Feature terms (live teacher, layer names): :class:`Hint` (FitNets, with an adapter), :class:`Attention`,
:class:`RKD` and :class:`SimilarityPreserving` (batch-level). :func:`auto_pairs` proposes the layer pairs;
:func:`method_terms` names whole methods (``"dkd"``, ``"at"``, ...) with their authors' weights.

Example:

    import tfkd
    distiller = tfkd.Distiller(teacher, student, terms=[
        tfkd.terms.KD(temperature=4.0, weight=0.9),
        tfkd.terms.Attention(tfkd.terms.auto_pairs(teacher, student), weight=1000.0),
    ], hard_weight=0.1)
"""

from tfkd.terms.adapters import FeatureAdapter
from tfkd.terms.base import TemperatureTerm, Term, TermBatch
from tfkd.terms.features import RKD, Attention, FeatureTerm, Hint, SimilarityPreserving
from tfkd.terms.logits import DIST, DKD, KD, BinaryKD, LogitMSE, SoftLoss
from tfkd.terms.methods import FEATURE_METHODS, LOGIT_METHODS, METHODS, method_terms, needs_live_teacher
from tfkd.terms.pairs import auto_pairs

__all__ = ["Attention", "BinaryKD", "DIST", "DKD", "FEATURE_METHODS", "FeatureAdapter", "FeatureTerm", "Hint", "KD",
           "LOGIT_METHODS", "LogitMSE", "METHODS", "RKD", "SimilarityPreserving", "SoftLoss", "TemperatureTerm",
           "Term", "TermBatch", "auto_pairs", "method_terms", "needs_live_teacher"]
