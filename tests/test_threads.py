"""The CPU threads training and evaluation run on: chosen by the size of their products,
given by the user, capped by the process's pools, and restored after.

The pools are read with threadpoolctl (the BLAS and OpenMP libraries loaded in the
process) and, for torch, ``torch.get_num_threads``; each test first sets them to a count
other than the one it expects during the run, so that a run that set nothing fails.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from xpnet import TwoLayerNet
from xpnet.backend import (
    SPLIT_FROM,
    SPLIT_UP_TO,
    THREADS_BY_SIZE,
    Backend,
    choose_threads,
    matmul,
    product_size,
    row_halves,
    runs_on_host_threads,
    to_numpy,
    using_threads,
)
from xpnet.training import ComputeSettings, TrainSettings

#: The lab's training step: a batch of 100 rows by the 784 x 175 first layer.
LAB = {"input_size": 784, "hidden_size": 175, "output_size": 10, "batch_size": 100}
#: 128 rows by 784 x 512: the second size class, whose products run in halves.
MIDDLE = {"input_size": 784, "hidden_size": 512, "output_size": 10, "batch_size": 128}
#: 512 rows by 784 x 1024, above the second size class.
LARGE = {"input_size": 784, "hidden_size": 1024, "output_size": 10, "batch_size": 512}


def pools(backend: Backend) -> dict[str, int]:
    """Every thread pool's size now: the BLAS libraries', and for torch its OpenMP pool and
    the MKL inside it (which threadpoolctl does not see, and which keeps the count
    ``torch.set_num_threads`` last gave it whatever the OpenMP pool's)."""
    sizes = {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()
             if pool["user_api"] == "blas"}  # fmt: skip
    assert sizes, "no BLAS library found: nothing to check"
    if backend.name == "torch":
        torch = sys.modules["torch"]
        sizes["torch"] = torch.get_num_threads()
        mkl = re.search(r"mkl_get_max_threads\(\) : (\d+)", torch.__config__.parallel_info())
        if mkl is not None:  # a build with MKL
            sizes["torch's MKL"] = int(mkl.group(1))
    return sizes


@contextlib.contextmanager
def pools_of(backend: Backend, threads: int) -> Iterator[None]:
    """Every pool at ``threads`` for the body (torch's too), restored after."""
    torch = sys.modules.get("torch") if backend.name == "torch" else None
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=threads):
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(before)


def train_watching_pools(backend: Backend, sizes: dict[str, int], **settings) -> tuple:
    """Train a net of ``sizes`` for two epochs of 2 steps; return the pools' sizes seen by
    ``progress`` after each step and by ``on_epoch`` after each epoch, and the record."""
    rng = np.random.default_rng(0)
    X = rng.random((2 * sizes["batch_size"], sizes["input_size"]))
    y = rng.integers(0, sizes["output_size"], X.shape[0])
    net = TwoLayerNet(sizes["input_size"], sizes["hidden_size"], sizes["output_size"],
                      backend=backend, seed=0)  # fmt: skip
    seen: list[dict[str, int]] = []
    net.train(X, y, X[:20], y[:20], num_iters=4, batch_size=sizes["batch_size"],
              progress=lambda *_: seen.append(pools(backend)),
              on_epoch=lambda *_: seen.append(pools(backend)), **settings)  # fmt: skip
    assert len(seen) >= 3  # a step or chunk, and both epochs
    return seen, net.last_training


def product_threads() -> int:
    """The helper threads of :func:`xpnet.backend.row_halves` alive now."""
    return sum(t.name.startswith("xpnet-product") for t in threading.enumerate())


def test_a_step_at_the_labs_size_runs_on_one_thread_then_the_pools_are_restored(backend):
    with pools_of(backend, 2):
        seen, record = train_watching_pools(backend, LAB)
        after = pools(backend)
    assert all(set(during.values()) == {1} for during in seen), seen
    assert set(after.values()) == {2}
    assert record["threads"] == 1


def test_a_larger_step_runs_halves_on_two_threads_then_the_pools_are_restored(backend):
    with pools_of(backend, 2):
        halves: list[int] = []
        rng = np.random.default_rng(0)
        X, y = rng.random((256, 784)), rng.integers(0, 10, 256)
        net = TwoLayerNet(784, 512, 10, backend=backend, seed=0)
        net.train(X, y, None, None, num_iters=4, batch_size=128,
                  progress=lambda *_: halves.append(product_threads()))  # fmt: skip
        seen, record = train_watching_pools(backend, MIDDLE)
        after = pools(backend)
    host = runs_on_host_threads(backend)
    # the BLAS at one thread, the halves on a helper thread beside the caller's; JAX's
    # and CuPy's products do not run on these pools, which are left at the count
    assert all(set(during.values()) == ({1} if host else {2}) for during in seen), seen
    assert set(halves) == ({1} if host else {0}), halves
    assert set(after.values()) == {2}
    assert product_threads() == 0  # the helper is stopped after
    assert record["threads"] == 2


def test_one_thread_or_two_give_the_same_bits_where_products_run_in_halves(backend):
    """The halves are the same calls wherever they run: a seed's numbers do not depend on
    the threads (128 x 784 by 784 x 512 products, 40 steps)."""
    rng = np.random.default_rng(1)
    X, y = rng.random((1024, 784)), rng.integers(0, 10, 1024)
    params = []
    for threads in (1, 2):
        net = TwoLayerNet(784, 512, 10, backend=backend, seed=0)
        net.train(X, y, None, None, num_iters=40, batch_size=128, threads=threads,
                  learning_rate=1e-3)  # fmt: skip
        params.append({name: to_numpy(value) for name, value in net.params.items()})
    for name in params[0]:
        assert np.array_equal(params[0][name], params[1][name]), name


def test_threads_given_are_honoured_whatever_the_pools_allow(backend):
    with pools_of(backend, 1):
        seen, record = train_watching_pools(backend, LAB, threads=2)
        after = pools(backend)
    assert all(set(during.values()) == {2} for during in seen), seen
    assert set(after.values()) == {1}
    assert record["threads"] == 2


#: (a's shape, b's): the forward product, the backward one (X.T by dL/dhidden), K stacked
#: networks' and K networks sharing one batch.
HALVED = [((128, 784), (784, 512)), ((784, 128), (128, 512)), ((3, 128, 784), (3, 784, 512)),
          ((128, 784), (3, 784, 512))]  # fmt: skip


@pytest.mark.parametrize("shapes", HALVED)
def test_a_product_in_halves_is_the_product_with_the_same_bits_on_one_thread_or_two(
    backend, shapes
):
    xp = backend.xp
    rng = np.random.default_rng(2)
    a, b = (backend.asarray(rng.standard_normal(shape)) for shape in shapes)
    if shapes[0] == (784, 128):  # as training passes it: the transpose of the batch
        a = backend.asarray(rng.standard_normal((128, 784))).T
    whole = to_numpy(a @ b)
    halves = []
    for threads in (1, 2):
        with row_halves(threads):
            halves.append(to_numpy(matmul(xp, a, b)))
    assert halves[0].shape == whole.shape
    tolerance = 1e-12 if whole.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(halves[0], whole, rtol=tolerance, atol=tolerance)
    assert np.array_equal(halves[0], halves[1])


def test_the_helper_half_keeps_the_callers_errstate():
    """Training ignores NumPy's floating-point warnings (a diverging run is its own to
    detect); the half on the helper thread ignores them as the caller's half does."""
    a = np.full((128, 784), 1e200)
    b = np.full((784, 512), 1e200)
    with row_halves(2), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        product = matmul(np, a, b)  # overflows in both halves
    assert product_threads() == 0
    assert np.isinf(product).all()


def test_a_computation_inside_anothers_halves_uses_whole_products():
    """A callback of a run in halves (say) that computes at a size below them: its
    products are whole, on its own thread count, not sent to the run's helper."""
    backend = ComputeSettings().resolved
    rng = np.random.default_rng(3)
    a, b = rng.random((128, 784)), rng.random((784, 512))
    with using_threads(2, backend, 128 * 784 * 512):
        with using_threads(1, backend, 100 * 784 * 175):
            inner = matmul(np, a, b)
            assert product_threads() == 0  # the run's helper was not started
        outer = matmul(np, a, b)
        assert product_threads() == 1
    np.testing.assert_allclose(inner, outer, rtol=1e-12)


def test_the_pools_are_restored_when_the_training_fails():
    backend = ComputeSettings().resolved

    def fail(*_):
        raise RuntimeError("stop here")

    X = np.random.default_rng(0).random((200, 784))
    net = TwoLayerNet(784, 175, 10, seed=0)
    with pools_of(backend, 2):
        with pytest.raises(RuntimeError, match="stop here"):
            net.train(X, np.zeros(200, dtype=int), None, None, batch_size=100, progress=fail)
        assert set(pools(backend).values()) == {2}


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (-1, ValueError),
                                              (2.5, TypeError), (True, TypeError),
                                              ("2", TypeError)])  # fmt: skip
def test_a_bad_thread_count_is_refused_with_its_value(value, error):
    with pytest.raises(error, match=f"threads must be a positive integer, got {value!r}"):
        TrainSettings(**LAB, threads=value)


def test_the_automatic_choice_follows_the_size_class():
    lab = product_size(LAB["batch_size"], LAB["input_size"], LAB["hidden_size"])
    large = product_size(LARGE["batch_size"], LARGE["input_size"], LARGE["hidden_size"])
    assert lab == 100 * 784 * 175  # multiply-adds of the lab's step
    middle = product_size(MIDDLE["batch_size"], MIDDLE["input_size"], MIDDLE["hidden_size"])
    assert choose_threads(lab, available=2) == 1
    assert choose_threads(middle, available=2) == 2  # as two halves of the products
    assert choose_threads(middle, available=1) == 1
    assert choose_threads(middle, available=16) == 2  # two halves keep two threads busy
    assert choose_threads(large, available=2) == 2
    assert choose_threads(large, available=16) == 16  # every thread the process allows
    assert [threads for _, threads in THREADS_BY_SIZE] == [1, 2, None]
    assert lab < SPLIT_FROM == THREADS_BY_SIZE[0][0] <= middle <= SPLIT_UP_TO < large


def test_the_automatic_choice_never_exceeds_what_the_process_allows():
    """As a Dask worker of ``xpnet tune`` allows its share, or OPENBLAS_NUM_THREADS=1."""
    settings = TrainSettings(**LARGE)
    backend = settings.compute.resolved
    with pools_of(backend, 2):
        assert settings.thread_count() == 2
    with pools_of(backend, 1):
        assert settings.thread_count() == 1
        assert settings.replace(threads=2).thread_count() == 2  # a given count is used


def test_only_cpu_libraries_that_use_the_pools_count_as_host_threads():
    numpy = ComputeSettings().resolved
    assert runs_on_host_threads(numpy)
    assert not runs_on_host_threads(Backend("jax", numpy.xp, "cpu"))
    assert not runs_on_host_threads(Backend("cupy", numpy.xp, 0))
