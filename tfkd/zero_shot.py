"""Zero-shot classification: images scored against class vectors, so classes never trained on can be predicted.

Every class has a class vector (here a row of :func:`tfkd.attributes.table`). A model trained on the *seen*
classes maps an image into the space of those vectors; a class held out of training is then recognised by its
vector alone. Three methods, sharing the pieces of this module:

- **attribute embedding**: an image embedding ``f(x)`` (any image model with ``d`` outputs) and an attribute
  embedding ``g(a)`` (a linear map, learned) with the compatibility ``s(x, c) = f(x) . g(a_c)``, trained with
  :func:`margin_loss` over the seen classes: ``embedding_model(encoder, vectors, embed_dim=d)``;
- **DeViSE** (Frome et al., 2013): the image is projected onto the *fixed* class vectors (unit length), trained
  with DeViSE's hinge rank loss :func:`devise_loss`: ``embedding_model(encoder, vectors)``;
- **ConSE** (Norouzi et al., 2014): no training beyond an ordinary classifier of the seen classes; an image's
  vector is the convex combination of its top-T seen classes' vectors weighted by the classifier's probabilities
  (:func:`conse`), and the prediction is the candidate class whose vector is nearest by cosine (:func:`nearest`).

At test time the candidates are the unseen classes alone (zero-shot) or all classes (the generalised setting):
:func:`class_scores` scores an embedding model's images against any table of class vectors.

References: A. Frome et al., "DeViSE: A Deep Visual-Semantic Embedding Model", NeurIPS 2013; M. Norouzi et al.,
"Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014; Z. Akata et al., "Evaluation of
Output Embeddings for Fine-Grained Image Classification", CVPR 2015 (the max-margin compatibility form).

Example:

    from tfkd import attributes, zero_shot
    _, vectors = attributes.table("fashion_mnist")            # (10, 14) class vectors
    seen, unseen = [0, 1, 3, 4, 5, 6, 7, 8], [2, 9]
    keep = np.isin(y_train, seen)                             # (stand-in data: digits, labels 0..9)
    y_seen = np.searchsorted(seen, y_train[keep])             # labels as indices into the seen classes
    encoder = models.plain_cnn(2, (8, 8, 1), 16, seed=0)      # f(x): 16 numbers an image
    model = zero_shot.embedding_model(encoder, vectors[seen], embed_dim=16)
    model.compile(optimizer="adam", loss=zero_shot.MarginLoss(margin=1.0))
    model.fit(x_train[keep], y_seen, epochs=1, verbose=0)
    scores = zero_shot.class_scores(model, x_test, vectors[unseen])   # (n, 2): unseen candidates only
    probs = np.full((3, len(seen)), 1 / len(seen))            # a seen-class classifier's probabilities
    guess = zero_shot.nearest(zero_shot.conse(probs, vectors[seen], top=3), vectors[unseen])
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["ClassScores", "DeViSELoss", "MarginLoss", "class_scores", "conse", "cosine_similarity", "devise_loss",
           "embedding_model", "evaluate", "margin_loss", "nearest"]

CLASS_SCORES = "class_scores"  # name of the ClassScores layer in an embedding_model


def _split(scores, labels):
    scores = keras.ops.convert_to_tensor(scores)
    if len(scores.shape) != 2 or scores.shape[-1] is None or scores.shape[-1] < 2:
        raise ValueError(f"scores has shape {tuple(scores.shape)}; expected [batch, classes] with at least 2 "
                         "classes (a ranking needs a wrong class to rank below the right one).")
    labels = keras.ops.cast(keras.ops.reshape(labels, (-1,)), "int32")
    onehot = keras.ops.one_hot(labels, scores.shape[-1], dtype=scores.dtype)
    true = keras.ops.sum(scores * onehot, axis=-1)
    return scores, onehot, true


def margin_loss(scores, labels, margin=1.0):
    """The max-margin compatibility loss ``max(0, margin - s_y + max_{y' != y} s_y')``, one value an example.

    Args:
        scores: ``[batch, classes]`` compatibility scores ``s_c = f(x) . g(a_c)`` over the training classes.
        labels: ``[batch]`` integer labels, indices into the classes of ``scores``.
        margin: ``k``, by how much the right class must beat the best wrong one.

    Returns ``[batch]`` losses (0 where the right class already wins by ``margin``); reduce them as you like.

    Example:

        from tfkd import zero_shot
        zero_shot.margin_loss(np.array([[2.0, 0.5, 1.5]]), np.array([0]))   # max(0, 1 - 2 + 1.5) = [0.5]
    """
    scores, onehot, true = _split(scores, labels)
    wrong = keras.ops.max(keras.ops.where(onehot > 0, keras.ops.full_like(scores, -np.inf), scores), axis=-1)
    return keras.ops.maximum(0.0, margin - true + wrong)


def devise_loss(scores, labels, margin=0.1):
    """DeViSE's hinge rank loss ``sum_{y' != y} max(0, margin - s_y + s_y')``, one value an example.

    Shapes as :func:`margin_loss`. Every wrong class that comes within ``margin`` of the right one adds to the loss
    (Frome et al., 2013, eq. 1), where the max-margin loss counts only the worst one.

    Example:

        from tfkd import zero_shot
        zero_shot.devise_loss(np.array([[2.0, 0.5, 1.5]]), np.array([0]), margin=1.0)   # 0 + 0.5 = [0.5]
    """
    scores, onehot, true = _split(scores, labels)
    hinge = keras.ops.maximum(0.0, margin - true[:, None] + scores)
    return keras.ops.sum(hinge * (1.0 - onehot), axis=-1)


@keras.saving.register_keras_serializable(package="tfkd")
class MarginLoss(keras.losses.Loss):
    """:func:`margin_loss` as a Keras loss (mean over the batch), for ``model.compile(loss=...)``."""

    def __init__(self, margin=1.0, name="margin_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return margin_loss(y_pred, y_true, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="tfkd")
class DeViSELoss(keras.losses.Loss):
    """:func:`devise_loss` as a Keras loss (mean over the batch), for ``model.compile(loss=...)``."""

    def __init__(self, margin=0.1, name="devise_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        return devise_loss(y_pred, y_true, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}


@keras.saving.register_keras_serializable(package="tfkd")
class ClassScores(keras.layers.Layer):
    """Scores of image embeddings against class vectors: ``[batch, d] -> [batch, classes]``.

    ``embed_dim=None`` (DeViSE): the class vectors are fixed, scaled to unit length, and the scores are
    ``f(x) . a_c / |a_c|`` (``f(x)`` has one number per attribute). ``embed_dim=d``: the vectors pass through a
    learned linear map ``g`` (no bias) to ``d`` numbers, and the scores are ``f(x) . g(a_c)``. The vectors are held
    as a non-trainable weight; :meth:`score` scores against any other table (other candidate classes).
    """

    def __init__(self, class_vectors, embed_dim=None, **kwargs):
        super().__init__(**kwargs)
        vectors = np.asarray(class_vectors, np.float32)
        if vectors.ndim != 2 or len(vectors) < 2:
            raise ValueError(f"class_vectors has shape {vectors.shape}; expected (classes, dims) with at least 2 "
                             "classes.")
        if embed_dim is not None and int(embed_dim) <= 0:
            raise ValueError(f"embed_dim={embed_dim} must be a positive number of dimensions, or None (fixed "
                             "class vectors).")
        self.embed_dim = None if embed_dim is None else int(embed_dim)
        self._vectors = vectors
        self.class_vectors = self.add_weight(shape=vectors.shape, initializer=keras.initializers.Constant(vectors),
                                             trainable=False, name="class_vectors")
        self.g = None
        if self.embed_dim is not None:
            self.g = keras.layers.Dense(self.embed_dim, use_bias=False, name="attribute_embedding")
            self.g.build((None, vectors.shape[1]))

    @property
    def dims(self) -> int:
        """The length the image embedding must have."""
        return self.embed_dim if self.embed_dim is not None else int(self._vectors.shape[1])

    def embed(self, vectors):
        """``g(vectors)``: ``[classes, A] -> [classes, dims]`` (unit length rows when the vectors are fixed)."""
        vectors = keras.ops.convert_to_tensor(vectors, "float32")
        if self.g is not None:
            return self.g(vectors)
        return vectors / keras.ops.maximum(keras.ops.norm(vectors, axis=-1, keepdims=True), 1e-12)

    def score(self, embeddings, vectors):
        """Scores ``[batch, classes]`` of ``embeddings`` ``[batch, dims]`` against ``vectors`` ``[classes, A]``."""
        return keras.ops.matmul(keras.ops.convert_to_tensor(embeddings), keras.ops.transpose(self.embed(vectors)))

    def call(self, embeddings):
        return self.score(embeddings, self.class_vectors)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(self._vectors.shape[0]))

    def get_config(self):
        return {**super().get_config(), "class_vectors": self._vectors.tolist(), "embed_dim": self.embed_dim}


def embedding_model(encoder, class_vectors, embed_dim=None, name="zero_shot"):
    """``encoder`` (image -> embedding) followed by :class:`ClassScores`: image -> scores over ``class_vectors``.

    ``embed_dim=None``: DeViSE (fixed vectors; the encoder must output one number per attribute). Otherwise the
    attribute embedding ``g`` is learned and the encoder must output ``embed_dim`` numbers. The scores train with
    :class:`MarginLoss` or :class:`DeViSELoss` on labels that index ``class_vectors``; their argmax is the
    predicted class, so ``"accuracy"`` works as a metric.
    """
    layer = ClassScores(class_vectors, embed_dim=embed_dim, name=CLASS_SCORES)
    width = int(encoder.output_shape[-1])
    if width != layer.dims:
        raise ValueError(f"encoder {encoder.name!r} outputs {width} numbers but the class scores need {layer.dims} "
                         f"({'embed_dim' if embed_dim is not None else 'one per attribute'}); build the encoder "
                         f"with {layer.dims} outputs.")
    return keras.Model(encoder.inputs, layer(encoder.outputs[0]), name=name)


def class_scores(model, x, class_vectors, batch_size=512) -> np.ndarray:
    """Scores ``[n, classes]`` of images ``x`` against ``class_vectors`` (any candidates) for an
    :func:`embedding_model`; the argmax over axis 1 is the predicted candidate."""
    layer = model.get_layer(CLASS_SCORES)
    embed = keras.Model(model.inputs, layer.input)
    embeddings = embed.predict(x, batch_size=batch_size, verbose=0)
    return keras.ops.convert_to_numpy(layer.score(embeddings, np.asarray(class_vectors, np.float32)))


def conse(probs, class_vectors, top=10) -> np.ndarray:
    """ConSE image vectors: ``sum_t p(c_t | x) a_{c_t} / sum_t p(c_t | x)`` over the ``top`` most probable classes.

    Args:
        probs: ``[n, seen]`` probabilities of a classifier over the seen classes (softmax outputs).
        class_vectors: ``[seen, A]`` the seen classes' vectors, in the classifier's class order.
        top: ``T``, how many of the most probable classes are combined (at most ``seen``).

    Returns ``[n, A]`` float32 (a convex combination of seen class vectors; nothing is trained).

    Example:

        from tfkd import zero_shot
        zero_shot.conse(np.array([[0.6, 0.3, 0.1]]), np.eye(3), top=2)   # [[0.667, 0.333, 0.]]
    """
    probs, vectors = np.asarray(probs, np.float64), np.asarray(class_vectors, np.float64)
    if probs.ndim != 2 or vectors.ndim != 2 or probs.shape[1] != vectors.shape[0]:
        raise ValueError(f"probs has shape {probs.shape} and class_vectors {vectors.shape}; expected [n, seen] and "
                         "[seen, A] with the same number of seen classes.")
    if not 1 <= int(top) <= probs.shape[1]:
        raise ValueError(f"top={top}: expected 1..{probs.shape[1]} (the number of seen classes).")
    top_idx = np.argsort(-probs, axis=1, kind="stable")[:, :int(top)]
    weights = np.take_along_axis(probs, top_idx, axis=1)
    weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("nt,nta->na", weights, vectors[top_idx]).astype(np.float32)


def cosine_similarity(a, b) -> np.ndarray:
    """``[n, A]`` x ``[classes, A]`` -> ``[n, classes]`` cosine similarities (0 against a zero vector)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def nearest(vectors, class_vectors) -> np.ndarray:
    """``[n]`` index of the row of ``class_vectors`` nearest by cosine to each row of ``vectors``.

    Example:

        from tfkd import zero_shot
        zero_shot.nearest(np.array([[0.9, 0.1], [0.2, 0.7]]), np.eye(2))   # [0, 1]
    """
    return cosine_similarity(vectors, class_vectors).argmax(axis=1)


def evaluate(predict, x, y, seen, unseen) -> dict:
    """Zero-shot accuracies of ``predict(images, candidates) -> predicted class ids`` on test images ``x``, ``y``.

    ``seen`` / ``unseen``: the class ids trained on / held out. Returns accuracies (chance in brackets):

    - ``unseen``: unseen-class images, unseen classes as the candidates (zero-shot; ``1 / len(unseen)``);
    - ``generalised_unseen``, ``generalised_seen``: unseen / seen-class images, every class a candidate (the
      generalised setting), and ``generalised_harmonic``, their harmonic mean; ``generalised_all``: every image
      (``1 / classes``);
    - ``seen``: seen-class images, seen classes as the candidates (ordinary accuracy, ``1 / len(seen)``).

    Example:

        from tfkd import zero_shot
        y = np.array([0, 1, 2, 2])
        oracle = lambda images, candidates: y[images]                     # "images" are indices here
        zero_shot.evaluate(oracle, np.arange(4), y, seen=[0, 1], unseen=[2])["generalised_all"]   # 1.0
    """
    y = np.asarray(y).reshape(-1)
    seen, unseen = [int(c) for c in seen], [int(c) for c in unseen]
    if set(seen) & set(unseen) or not seen or not unseen:
        raise ValueError(f"seen={seen} and unseen={unseen} must be non-empty and disjoint.")
    everything = sorted(seen + unseen)
    is_unseen = np.isin(y, unseen)

    def acc(mask, candidates):
        if not mask.any():
            raise ValueError(f"y holds no test image of classes {candidates}; keep test images of every class.")
        return float(np.mean(np.asarray(predict(x[mask], candidates)) == y[mask]))

    out = {"unseen": acc(is_unseen, unseen), "seen": acc(~is_unseen, seen)}
    pred = np.asarray(predict(x, everything))
    out["generalised_unseen"] = float(np.mean(pred[is_unseen] == y[is_unseen]))
    out["generalised_seen"] = float(np.mean(pred[~is_unseen] == y[~is_unseen]))
    out["generalised_all"] = float(np.mean(pred == y))
    u, s = out["generalised_unseen"], out["generalised_seen"]
    out["generalised_harmonic"] = 2 * u * s / (u + s) if u + s > 0 else 0.0
    return out
