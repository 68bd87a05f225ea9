"""Autoencoders: a representation learned from unlabeled images alone, by reconstructing them.

:func:`autoencoder` puts a decoder mirrored from an encoder's output (transposed convolutions back to the image
size, or one Dense layer for a flat encoder) behind the encoder; :func:`train_autoencoder` trains it to reproduce
its input (mean squared error on [0, 1] pixels), so it takes images and nothing else: no label reaches it.
``noise_std > 0`` makes a denoising autoencoder (Gaussian noise on the input during training only). The encoder
is used, not copied: training the autoencoder trains it, ready for a classifier head (self-taught learning,
Raina et al., 2007, with an autoencoder in place of their sparse coding).

Example:

    from tfkd import autoencoder, trunk
    encoder = trunk.trunk(models.plain_cnn(4, (8, 8, 1), 10, seed=0))   # image -> flattened conv features
    ae = autoencoder.autoencoder(encoder, seed=0)                       # image -> image in [0, 1]
    history = autoencoder.train_autoencoder(ae, x_train, epochs=1, batch_size=64)   # images only, no labels
    assert ae.predict(x_test[:4], verbose=0).shape == x_test[:4].shape
"""

from __future__ import annotations

import numpy as np

__all__ = ["autoencoder", "decoder", "train_autoencoder"]


def _feature_map_shape(encoder):
    """The (h, w, c) map behind the encoder's output: its output itself, or what its last Flatten flattened."""
    import keras

    out = tuple(encoder.output.shape[1:])
    if len(out) == 3:
        return out
    for layer in reversed(encoder.layers):
        if isinstance(layer, keras.layers.Flatten) and len(layer.input.shape) == 4:
            shape = tuple(layer.input.shape[1:])
            if int(np.prod(shape)) == int(np.prod(out)) and layer.output is encoder.output:
                return shape
            break
    return None


def decoder(encoder, *, seed=0, name=None):
    """A decoder ``features -> image in [0, 1]`` of the encoder's input shape, mirrored from its feature map.

    A conv encoder's feature map (``h x w x c``, flattened or not) is upsampled by 3x3 stride-2 transposed
    convolutions (ReLU; ``c`` filters, then half as many each step, at least 8) until it reaches the image size
    (a bilinear resize fixes sizes that are not a power of two apart), then a 3x3 convolution with a sigmoid gives
    the image. A flat encoder (an MLP) gets one Dense layer with a sigmoid. Seeded, like :mod:`tfkd.models`.
    """
    import keras

    from tfkd.models import _Seeds

    image = tuple(int(d) for d in encoder.inputs[0].shape[1:])
    seeds = _Seeds(seed)
    code = keras.Input(shape=tuple(encoder.output.shape[1:]), name="code")
    spatial = _feature_map_shape(encoder)
    if spatial is None or len(image) != 3:
        x = keras.layers.Dense(int(np.prod(image)), activation="sigmoid", name="dec_dense",
                               kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()))(code)
        out = keras.layers.Reshape(image, name="dec_image")(x)
        return keras.Model(code, out, name=name or f"{encoder.name}_decoder")
    h, w, c = (int(d) for d in spatial)
    x = code if len(code.shape) == 4 else keras.layers.Reshape((h, w, c), name="dec_reshape")(code)
    filters, step = c, 0
    while h < image[0] or w < image[1]:
        step += 1
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu",
                                         kernel_initializer=keras.initializers.HeNormal(seed=seeds()),
                                         name=f"dec_up{step}")(x)
        h, w, filters = h * 2, w * 2, max(8, filters // 2)
    if (h, w) != image[:2]:
        x = keras.layers.Resizing(image[0], image[1], interpolation="bilinear", name="dec_resize")(x)
    out = keras.layers.Conv2D(image[2], 3, padding="same", activation="sigmoid", name="dec_image",
                              kernel_initializer=keras.initializers.GlorotUniform(seed=seeds()))(x)
    return keras.Model(code, out, name=name or f"{encoder.name}_decoder")


def autoencoder(encoder, *, seed=0, noise_std=0.0, name=None):
    """``image -> encoder -> decoder -> image``; with ``noise_std > 0``, Gaussian input noise while training."""
    import keras

    if not noise_std >= 0:
        raise ValueError(f"noise_std={noise_std!r} must be >= 0 (0: a plain autoencoder; > 0: denoising).")
    inputs = keras.Input(shape=tuple(encoder.inputs[0].shape[1:]), name="image")
    x = inputs
    if noise_std > 0:
        from tfkd.models import _Seeds

        x = keras.layers.GaussianNoise(float(noise_std), seed=_Seeds(seed).noise(), name="input_noise")(x)
    out = decoder(encoder, seed=seed)(encoder(x))
    return keras.Model(inputs, out, name=name or f"{encoder.name}_autoencoder")


def _check_images(x, what):
    x = np.asarray(x)
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.floating) or x.size == 0:
        raise ValueError(f"{what}: expected a non-empty float image batch, got shape {x.shape}, dtype {x.dtype}.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{what}: pixels span [{lo:g}, {hi:g}]; the decoder ends in a sigmoid, so expected images in "
                         "[0, 1] (tfkd.data.load gives them; divide uint8 images by 255).")
    return x


def train_autoencoder(model, x, *, epochs, batch_size=128, lr=1e-3, optimizer=None, validation_data=None,
                      callbacks=(), checkpoint_dir=None, log_dir=None, label=None, verbose=0):
    """Train an :func:`autoencoder` to reconstruct ``x`` (images in [0, 1]); resumable like ``tfkd.training.fit``.

    ``x`` is the only data (the targets are ``x`` itself); ``validation_data`` is another image array, no
    labels. Returns the history (``loss``: mean squared error per pixel).
    """
    import keras

    from tfkd import training

    x = _check_images(x, "x")
    if validation_data is not None:
        validation_data = _check_images(validation_data, "validation_data")
        validation_data = (validation_data, validation_data)
    model.compile(optimizer=optimizer or keras.optimizers.Adam(learning_rate=lr), loss="mse")
    return training.fit(model, x, x, epochs=epochs, batch_size=batch_size, validation_data=validation_data,
                        callbacks=callbacks, checkpoint_dir=checkpoint_dir, log_dir=log_dir, label=label,
                        verbose=verbose)
