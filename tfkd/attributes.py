"""Class attribute tables: a hand-written binary description of each class, the class vectors of zero-shot learning.

``FASHION_MNIST`` describes the 10 Fashion-MNIST classes (in label order) by 14 yes/no attributes, each chosen so
that it can be seen in a 28x28 grey product photo and so that every class gets a different row. A zero-shot
method learns to read the attributes of the classes it is trained on and recognises a held-out class from its row
alone (:mod:`tfkd.zero_shot`).

Attributes (1 = yes), and why each class gets its value:

=================  ==========================================================================================
``upper_body``      worn on the upper body, covering the shoulders: T-shirt/top, Pullover, Dress, Coat, Shirt.
``legs``            covers the legs: Trouser (both legs), Dress (its skirt hangs over the thighs). Coats in
                    Fashion-MNIST end at the hip, so Coat is 0.
``sleeves``         has sleeves: T-shirt/top (short), Pullover, Coat, Shirt (long). Most Fashion-MNIST dresses are
                    shown sleeveless or with sleeves hidden in the silhouette, so Dress is 0.
``long_sleeves``    sleeves reach the wrist: Pullover, Coat, Shirt; a T-shirt's sleeves are short.
``front_opening``   opens down the front (buttons or a zip, a visible placket or line in the photo): Coat, Shirt.
                    A pullover goes on over the head, a T-shirt and a dress have no opening.
``below_hips``      the garment is long, reaching below the hips: Trouser, Dress, Coat.
``warm``            made for the cold (thick fabric, a darker, solid silhouette): Pullover, Coat, Ankle boot.
``footwear``        worn on the feet: Sandal, Sneaker, Ankle boot.
``covers_ankle``    a shoe whose shaft rises over the ankle: Ankle boot.
``open_straps``     a shoe made of straps with gaps between them (the sole shows through): Sandal.
``heel``            a raised heel: Ankle boot, and Sandal (most Fashion-MNIST sandals are heeled); sneakers are flat.
``laces``           a laced, closed, flat shoe: Sneaker (Fashion-MNIST ankle boots are mostly zipped or heeled).
``carried``         carried, not worn (a handle or strap, a box-like shape): Bag.
``two_legs``        split into two tubes: Trouser.
=================  ==========================================================================================

Every row is distinct (a test checks it), so each class has a class vector of its own. Several attributes belong
to one class alone (``covers_ankle``, ``open_straps``, ``laces``, ``carried``, ``two_legs``): they keep rows apart,
but when that class is held out of training no training image shows the attribute, and a model can only recognise
the class from its other attributes. Pick held-out classes whose rows share attributes with the classes trained on.

Example:

    from tfkd import attributes
    names, table = attributes.table("fashion_mnist")   # 14 attribute names, a (10, 14) float32 array of 0/1
    table[9]                                           # Ankle boot: warm, footwear, covers_ankle, heel
"""

from __future__ import annotations

import numpy as np

__all__ = ["FASHION_MNIST", "FASHION_MNIST_ATTRIBUTES", "TABLES", "table"]

FASHION_MNIST_ATTRIBUTES = ("upper_body", "legs", "sleeves", "long_sleeves", "front_opening", "below_hips", "warm",
                            "footwear", "covers_ankle", "open_straps", "heel", "laces", "carried", "two_legs")

# One row per class, in Fashion-MNIST label order; columns in FASHION_MNIST_ATTRIBUTES order.
FASHION_MNIST = (
    # up  leg slv lng opn  bh wrm  ft ank str hel lac car 2lg
    (1,   0,  1,  0,  0,   0,  0,  0,  0,  0,  0,  0,  0,  0),  # 0 T-shirt/top
    (0,   1,  0,  0,  0,   1,  0,  0,  0,  0,  0,  0,  0,  1),  # 1 Trouser
    (1,   0,  1,  1,  0,   0,  1,  0,  0,  0,  0,  0,  0,  0),  # 2 Pullover
    (1,   1,  0,  0,  0,   1,  0,  0,  0,  0,  0,  0,  0,  0),  # 3 Dress
    (1,   0,  1,  1,  1,   1,  1,  0,  0,  0,  0,  0,  0,  0),  # 4 Coat
    (0,   0,  0,  0,  0,   0,  0,  1,  0,  1,  1,  0,  0,  0),  # 5 Sandal
    (1,   0,  1,  1,  1,   0,  0,  0,  0,  0,  0,  0,  0,  0),  # 6 Shirt
    (0,   0,  0,  0,  0,   0,  0,  1,  0,  0,  0,  1,  0,  0),  # 7 Sneaker
    (0,   0,  0,  0,  0,   0,  0,  0,  0,  0,  0,  0,  1,  0),  # 8 Bag
    (0,   0,  0,  0,  0,   0,  1,  1,  1,  0,  1,  0,  0,  0),  # 9 Ankle boot
)

# dataset name -> (attribute names, rows in label order)
TABLES = {"fashion_mnist": (FASHION_MNIST_ATTRIBUTES, FASHION_MNIST)}


def table(dataset="fashion_mnist"):
    """``(attribute names, class vectors)`` of ``dataset``: a tuple of A names and a ``(classes, A)`` float32 array."""
    if dataset not in TABLES:
        raise ValueError(f"dataset={dataset!r} has no attribute table; tables exist for: {', '.join(TABLES)}.")
    names, rows = TABLES[dataset]
    return names, np.asarray(rows, np.float32)
