"""Memory: training on the full MNIST training set holds at most one copy per dtype conversion."""

from __future__ import annotations

import tracemalloc

import pytest

from xpnet import TwoLayerNet

MiB = 2**20


def peak_training_memory(dtype, X_train, y_train, X_val, y_val) -> int:
    """Peak bytes allocated (NumPy's allocations included) by 600 iterations of training."""
    net = TwoLayerNet(784, 175, 10, dtype=dtype, seed=0)
    tracemalloc.start()
    try:
        net.train(X_train, y_train, X_val, y_val, num_iters=600, batch_size=100)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_same_dtype_training_makes_no_copy_of_the_data(mnist_rows):
    X_train, y_train, X_val, y_val, _, _ = mnist_rows
    assert X_train.dtype.name == "float32"  # read_data_sets' dtype: no conversion below
    peak = peak_training_memory("float32", X_train, y_train, X_val, y_val)
    # Bound: a tenth of the training set (16 MiB of 164 MiB) for batches and activations.
    assert peak < X_train.nbytes / 10, f"{peak / MiB:.1f} MiB"


def test_a_dtype_conversion_makes_one_copy(mnist_rows):
    X_train, y_train, X_val, y_val, _, _ = mnist_rows
    peak = peak_training_memory("float64", X_train, y_train, X_val, y_val)
    one_float64_copy = 2 * (X_train.nbytes + X_val.nbytes)
    # Bound: one float64 copy of the training and validation rows, plus 32 MiB.
    assert peak < one_float64_copy + 32 * MiB, f"{peak / MiB:.1f} MiB"


pytestmark = [pytest.mark.mnist, pytest.mark.slow]  # 600 steps on the full training set
