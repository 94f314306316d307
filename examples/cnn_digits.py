"""Momentum SGD, AdamW and Adan on a small CNN over scikit-learn's 8x8 digits.

Run from the repository root (about 30 s on 2 CPU cores; writes examples/cnn_digits.png):

    python examples/cnn_digits.py

It trains each optimizer for 300 steps of 64 images (18 epochs; 5% warmup, then cosine
decay) on seeds 1-3, at the peak learning rates that

    python examples/cnn_digits.py --sweep --sweep-seeds 3

chose: five candidates a factor ~3 apart per optimizer, ranked by mean final validation
loss over seeds 0, 100, 200. Every optimum lies inside its grid (the adaptive grids
started at 3e-4..3e-2, where a one-seed sweep put the optimum on the top edge, and were
moved up one notch). 1077 training, 360 validation and 360 test images; mean ± std over seeds 1-3:

    optimizer, peak lr       val loss        val acc       test loss       test acc
    SGD, momentum 0.9, 0.1   0.073 ± 0.006   97.9 ± 0.5%   0.105 ± 0.020   97.6 ± 0.1%
    AdamW, 0.01              0.037 ± 0.004   98.5 ± 0.1%   0.054 ± 0.009   97.8 ± 0.2%
    Adan, 0.01               0.072 ± 0.020   98.4 ± 0.4%   0.119 ± 0.007   97.1 ± 0.3%

Found: all three fit the training set (final train loss <= 0.001). Momentum SGD is
competitive in accuracy, 0.7 points behind AdamW on validation (two or three of 360
images) and 0.2 on test, but not in held-out loss, where AdamW's is half the other
two's: on data this small the loss gap is the confidence of a few mistakes. Adan never
reaches AdamW's final validation loss; AdamW itself first reaches it near step 120 and
then stays level.
"""

import jax
import jax.numpy as jnp
import numpy as np
from _studies import Task, main
from flax import linen as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


class CNN(nn.Module):
    """Two 3x3 convolutions (the second with stride 2) and a small dense head."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3))(x))  # 8x8x32
        x = nn.relu(nn.Conv(64, (3, 3), strides=2)(x))  # 4x4x64
        x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def load_splits(held_out=360):
    """Images scaled to [0, 1] with a channel axis; stratified train, val and test sets
    (1077, 360, 360 images)."""
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    x_train, x_rest, y_train, y_rest = train_test_split(
        images, labels, test_size=2 * held_out, random_state=0, stratify=labels
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, test_size=held_out, random_state=0, stratify=y_rest
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def make_task(batch_size=64):
    (x_train, y_train), val, test = (tuple(map(jnp.asarray, s)) for s in load_splits())
    # The train curve is measured on a fixed subset as large as the held-out sets, so
    # that one compiled evaluation serves all three.
    splits = {"train": (x_train[: len(val[1])], y_train[: len(val[1])]), "val": val, "test": test}
    model = CNN()

    def metrics(params, batch):
        x, y = batch
        logits = model.apply(params, x)
        log_probs = jax.nn.log_softmax(logits)
        loss = -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))
        return loss, jnp.mean(jnp.argmax(logits, axis=-1) == y)

    def sample(key):
        idx = jax.random.choice(key, len(y_train), (batch_size,), replace=False)
        return x_train[idx], y_train[idx]

    return Task(
        title="Digits CNN",
        init=lambda key: model.init(key, x_train[:1]),
        metrics=metrics,
        sample=sample,
        splits=splits,
        lrs={"sgd": 0.1, "adamw": 1e-2, "adan": 1e-2},
        grids={
            "sgd": (0.01, 0.03, 0.1, 0.3, 1.0),
            "adamw": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
            "adan": (1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        },
    )


if __name__ == "__main__":
    main(make_task(), __doc__, __file__, steps=300, seeds=3)
