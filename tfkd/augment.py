"""Input noise: RandAugment, light geometric jitter and mixup, as Keras layers or batch -> batch callables.

Two uses: noise for the student only (Noisy Student: ``cache.dataset(x, student_transform=make(...))``), and one
augmented view shared by teacher and student ("consistent teaching", Beyer et al. 2022:
``Distiller(..., augment=layer(...))``).

Example:

    noise = tfkd.augment.make("randaugment", magnitude=0.3, seed=0)
    cache = tfkd.cache_teacher_logits(teacher, x)
    ds = cache.dataset(x, y, student_transform=noise)   # the teacher's logits stay those of the clean images
    distiller = tfkd.Distiller(teacher, student, alpha=1.0, temperature=1.0,
                               augment=tfkd.augment.layer("simple", mixup=0.2))
"""

from __future__ import annotations

KINDS = ("none", "randaugment", "simple")


def layer(kind="simple", *, magnitude=0.3, num_ops=2, mixup=0.0, seed=0):
    """A Keras layer applying ``kind`` noise (and mixup with Beta(``mixup``, ``mixup``) if > 0) when training."""
    import keras

    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not a known noise; expected one of {KINDS}.")
    if not 0.0 <= magnitude <= 1.0:
        raise ValueError(f"magnitude={magnitude} must be in [0, 1].")
    if mixup < 0:
        raise ValueError(f"mixup={mixup} must be >= 0 (the Beta distribution's parameter; 0 turns mixup off).")
    parts = []
    if kind == "randaugment":
        parts.append(keras.layers.RandAugment(value_range=(0.0, 1.0), num_ops=num_ops, factor=magnitude, seed=seed))
    elif kind == "simple":
        f = 0.1 * magnitude / 0.3
        # RandomRotation's factor is a fraction of a full turn: f / 4 is about +-9 degrees at magnitude 0.3.
        parts += [keras.layers.RandomRotation(f / 4, fill_mode="constant", seed=seed),
                  keras.layers.RandomTranslation(f, f, fill_mode="constant", seed=seed + 1),
                  keras.layers.RandomZoom(f, fill_mode="constant", seed=seed + 2)]
    if mixup > 0:
        parts.append(MixUp(mixup, seed=seed + 3))
    if not parts:
        return keras.layers.Identity(name="no_noise")
    return keras.Sequential(parts, name=f"{kind}_noise" + ("_mixup" if mixup else ""))


def make(kind="randaugment", *, magnitude=0.3, num_ops=2, mixup=0.0, seed=0):
    """A ``batch -> batch`` noise function (the :func:`layer` in training mode), or ``None`` for ``kind="none"``."""
    if kind == "none" and not mixup:
        return None
    noise = layer(kind, magnitude=magnitude, num_ops=num_ops, mixup=mixup, seed=seed)

    def apply(batch):
        return noise(batch, training=True)

    apply.layer = noise  # its seed generators, for tfkd.rng.epoch_keyed to re-seed every epoch
    return apply


def mixes(augment) -> bool:
    """Whether an ``augment`` layer (e.g. from :func:`layer`) contains a :class:`MixUp` anywhere inside."""
    stack = [augment]
    while stack:
        layer = stack.pop()
        if isinstance(layer, MixUp):
            return True
        stack.extend(getattr(layer, "layers", []))
    return False


def split_mixup(augment):
    """(layers applied before mixing, the final :class:`MixUp` or None) of an ``augment`` layer.

    Labels can be mixed along with the images only when mixup comes last (as :func:`layer` builds it): the layer
    itself, or the last layer of a ``keras.Sequential`` with no other MixUp inside. Anything else that mixes raises.
    """
    if isinstance(augment, MixUp):
        return [], augment
    layers = list(getattr(augment, "layers", []))
    if layers and isinstance(layers[-1], MixUp) and not any(mixes(inner) for inner in layers[:-1]) \
            and isinstance(augment, _keras().Sequential):
        return layers[:-1], layers[-1]
    if mixes(augment):
        raise ValueError(f"augment={augment.name!r} mixes images with a MixUp that is not its last layer, so the "
                         "labels cannot be mixed along with the images. Put MixUp last in a keras.Sequential (as "
                         "tfkd.augment.layer(..., mixup=a) does), or train without labels (pure function matching).")
    return None, None


def _keras():
    import keras

    return keras


@_keras().saving.register_keras_serializable(package="tfkd")
class MixUp(_keras().layers.Layer):
    """Mixes each image with another of the batch: ``lam * x + (1 - lam) * x[perm]``, ``lam ~ Beta(a, a)``.

    For function matching the teacher labels the mixed image itself. Labels, where a hard loss uses them, must be
    mixed the same way: :class:`tfkd.Distiller` does it (``lam * loss(y) + (1 - lam) * loss(y[perm])``) through
    :meth:`mix`, which also returns ``lam`` and ``perm``. Identity at inference.
    """

    def __init__(self, alpha=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if alpha <= 0:
            raise ValueError(f"alpha={alpha} must be > 0.")
        self.alpha, self.seed = float(alpha), seed
        self.seed_generator = _keras().random.SeedGenerator(seed)

    def mix(self, inputs):
        """(mixed batch, ``lam`` of shape [batch], ``perm``): example i is ``lam[i] x[i] + (1 - lam[i]) x[perm[i]]``."""
        K = _keras()
        n = K.ops.shape(inputs)[0]
        shape = [n] + [1] * (len(inputs.shape) - 1)
        g1 = K.random.gamma(shape, self.alpha, seed=self.seed_generator)
        g2 = K.random.gamma(shape, self.alpha, seed=self.seed_generator)
        lam = K.ops.cast(g1 / (g1 + g2), inputs.dtype)
        perm = K.random.shuffle(K.ops.arange(n), seed=self.seed_generator)
        return lam * inputs + (1.0 - lam) * K.ops.take(inputs, perm, axis=0), K.ops.reshape(lam, [-1]), perm

    def call(self, inputs, training=False):
        if not training:
            return inputs
        return self.mix(inputs)[0]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "seed": self.seed}
