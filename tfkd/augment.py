"""Input noise: RandAugment, light geometric jitter, image degradations and mixup, as Keras layers or callables.

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

KINDS = ("none", "randaugment", "simple", "degrade")


def layer(kind="simple", *, magnitude=0.3, num_ops=2, mixup=0.0, seed=0):
    """A Keras layer applying ``kind`` noise (and mixup with Beta(``mixup``, ``mixup``) if > 0) when training.

    Kinds: ``randaugment`` (``keras.layers.RandAugment``, ``num_ops`` ops at ``factor=magnitude``), ``simple``
    (rotation, translation and zoom, about +-9 degrees / 10 % at magnitude 0.3), ``degrade`` (:class:`Degrade`:
    Gaussian noise, blur and lowered contrast of random strengths) and ``none``. Kinds joined by ``+`` apply one
    after the other at the same ``magnitude`` (``"simple+degrade"``: geometric jitter, then degradations).

    Example:

        noise = tfkd.augment.layer("simple+degrade", magnitude=0.3, seed=0)
        x_noised = noise(x_train[:8], training=True)
    """
    import keras

    kinds = kind.split("+") if isinstance(kind, str) else [kind]
    if any(k not in KINDS for k in kinds):
        raise ValueError(f"kind={kind!r} is not a known noise; expected one of {KINDS}, or several joined by '+'.")
    if not 0.0 <= magnitude <= 1.0:
        raise ValueError(f"magnitude={magnitude} must be in [0, 1].")
    if mixup < 0:
        raise ValueError(f"mixup={mixup} must be >= 0 (the Beta distribution's parameter; 0 turns mixup off).")
    parts = []
    for i, one in enumerate(kinds):
        s = seed + 10 * i  # the first kind draws from the seeds it uses alone
        if one == "randaugment":
            parts.append(keras.layers.RandAugment(value_range=(0.0, 1.0), num_ops=num_ops, factor=magnitude, seed=s))
        elif one == "simple":
            f = 0.1 * magnitude / 0.3
            # RandomRotation's factor is a fraction of a full turn: f / 4 is about +-9 degrees at magnitude 0.3.
            parts += [keras.layers.RandomRotation(f / 4, fill_mode="constant", seed=s),
                      keras.layers.RandomTranslation(f, f, fill_mode="constant", seed=s + 1),
                      keras.layers.RandomZoom(f, fill_mode="constant", seed=s + 2)]
        elif one == "degrade":
            parts.append(Degrade(magnitude, seed=s))
    if mixup > 0:
        parts.append(MixUp(mixup, seed=seed + 3))
    if not parts:
        return keras.layers.Identity(name="no_noise")
    return keras.Sequential(parts, name=f"{'_'.join(kinds)}_noise" + ("_mixup" if mixup else ""))


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


@_keras().saving.register_keras_serializable(package="tfkd")
class Degrade(_keras().layers.Layer):
    """Image degradations of random strength: Gaussian blur, lowered contrast and additive Gaussian noise.

    Each image of a training batch independently gets each degradation with probability ``p``, in that order,
    at a strength drawn uniformly per image from zero up to a maximum set by ``magnitude`` in [0, 1]:

    - blur: a Gaussian of sigma up to ``2.5 * magnitude`` pixels (separable, symmetric borders);
    - contrast: ``(x - mean) * c + mean`` around each image's mean, ``c`` down to ``max(0.1, 1 - 1.8 * magnitude)``;
    - noise: ``N(0, s^2)`` per pixel, ``s`` up to ``0.25 * magnitude`` of the value range.

    The result is clipped to ``value_range``; shape and dtype are kept; at inference it is the identity. Its
    families are those of :mod:`tfkd.corruptions` (the corrupted test set of ``tfkd run noisy-student``), but it is
    a separate implementation drawing continuous strengths, not the test set's function at its five severities;
    a robustness gain it brings on that test set is partly "trained on the corruption family", so weigh it so.

    Example:

        noise = tfkd.augment.Degrade(0.5, seed=0)
        x_noised = noise(x_train[:8], training=True)   # same shape, values stay in [0, 1]
        assert np.array_equal(noise(x_train[:8]), x_train[:8])   # identity when not training
    """

    def __init__(self, magnitude=0.5, p=0.5, value_range=(0.0, 1.0), seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= magnitude <= 1.0:
            raise ValueError(f"magnitude={magnitude} must be in [0, 1].")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p={p} must be a probability in [0, 1].")
        low, high = (float(v) for v in value_range)
        if not low < high:
            raise ValueError(f"value_range={value_range!r} must be (low, high) with low < high, e.g. (0.0, 1.0).")
        self.magnitude, self.p, self.value_range, self.seed = float(magnitude), float(p), (low, high), seed
        self.max_sigma = 2.5 * self.magnitude
        self.min_contrast = max(0.1, 1.0 - 1.8 * self.magnitude)
        self.max_noise = 0.25 * self.magnitude * (high - low)
        self.radius = max(1, int(round(3 * self.max_sigma)))  # kernel half-width covering 3 sigma at the most
        self.seed_generator = _keras().random.SeedGenerator(seed)

    def _draw(self, shape, low, high, dtype):
        K = _keras()
        on = K.ops.cast(K.random.uniform(shape, seed=self.seed_generator) < self.p, dtype)
        return on * K.random.uniform(shape, low, high, dtype=dtype, seed=self.seed_generator)  # 0 where off

    def _blur(self, x, sigma):
        """Separable Gaussian blur of every image by its own ``sigma`` ([batch, 1, 1, 1]; 0 leaves it as is)."""
        K = _keras()
        r = self.radius
        taps = K.ops.cast(K.ops.arange(-r, r + 1), x.dtype)  # [2r + 1]
        w = K.ops.exp(-(taps ** 2) / (2.0 * K.ops.maximum(sigma, 1e-3) ** 2))  # [batch, 1, 1, 2r + 1]
        w = w / K.ops.sum(w, axis=-1, keepdims=True)
        for axis in (1, 2):
            size = x.shape[axis]
            pad = [[0, 0]] * 4
            pad[axis] = [r, r]
            padded = K.ops.pad(x, pad, mode="symmetric")
            out = 0.0
            for i in range(2 * r + 1):
                piece = padded[:, i:i + size] if axis == 1 else padded[:, :, i:i + size]
                out = out + w[..., i:i + 1] * piece
            x = out
        return x

    def call(self, inputs, training=False):
        if not training or self.magnitude == 0.0 or self.p == 0.0:
            return inputs
        K = _keras()
        x = K.ops.convert_to_tensor(inputs)
        n = K.ops.shape(x)[0]
        shape, dtype = (n, 1, 1, 1), x.dtype
        low, high = self.value_range
        sigma = self._draw(shape, 0.0, self.max_sigma, dtype)
        x = self._blur(x, sigma)
        drop = self._draw(shape, 0.0, 1.0 - self.min_contrast, dtype)
        mean = K.ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * (1.0 - drop) + mean
        std = self._draw(shape, 0.0, self.max_noise, dtype)
        x = x + std * K.random.normal(K.ops.shape(x), dtype=dtype, seed=self.seed_generator)
        return K.ops.clip(x, low, high)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "magnitude": self.magnitude, "p": self.p,
                "value_range": list(self.value_range), "seed": self.seed}
