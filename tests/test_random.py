"""Threefry-2x32 on the device: known answers, JAX's generator, bit-identity across backends
and chunkings, and the statistics of the numbers made from its words."""

from __future__ import annotations

import importlib.util
import math
import warnings

import numpy as np
import pytest

from xpnet import random as xr
from xpnet import resolve_backend, to_numpy

NUMPY = resolve_backend("numpy")

# Random123's known-answer vectors for threefry2x32_20 (its tests/kat_vectors):
# counter words, key words, output words.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]

SEED = 20261201


def words(backend, values):
    """32-bit words as the int32 array of the same bits, on ``backend``'s device."""
    signed = np.asarray(values, dtype=np.uint64).astype(np.uint32).view(np.int32)
    return backend.asarray(signed, dtype=backend.xp.int32)


def unsigned(array):
    """An int32 array of words as NumPy uint32."""
    return to_numpy(array).astype(np.int32).view(np.uint32)


def key(backend, stream=0, seed=SEED):
    return xr.stream_key(seed, stream, xp=backend.xp, device=backend.device)


@pytest.mark.parametrize(("count", "key_words", "expected"), KNOWN_ANSWERS)
def test_threefry_gives_random123s_known_answers(backend, count, key_words, expected):
    # three copies of the counter, to check the broadcast as well as the words
    y0, y1 = xr.threefry2x32(
        words(backend, key_words),
        words(backend, [count[0]] * 3),
        words(backend, [count[1]] * 3),
        xp=backend.xp,
        device=backend.device,
    )
    np.testing.assert_array_equal(unsigned(y0), np.full(3, expected[0], dtype=np.uint32))
    np.testing.assert_array_equal(unsigned(y1), np.full(3, expected[1], dtype=np.uint32))


@pytest.mark.backend("jax")
def test_threefry_matches_jax_random_threefry_2x32():
    jax_random = pytest.importorskip("jax.extend.random")
    rng = np.random.default_rng(0)
    for _ in range(4):
        key_words = rng.integers(0, 2**32, size=2, dtype=np.uint32)
        counts = rng.integers(0, 2**32, size=(2, 64), dtype=np.uint32)
        y0, y1 = xr.threefry2x32(
            words(NUMPY, key_words),
            words(NUMPY, counts[0]),
            words(NUMPY, counts[1]),
            xp=NUMPY.xp,
            device=NUMPY.device,
        )
        theirs = np.asarray(jax_random.threefry_2x32(key_words, counts.reshape(-1)))
        np.testing.assert_array_equal(np.concatenate([unsigned(y0), unsigned(y1)]), theirs)


@pytest.mark.backend("jax")
@pytest.mark.parametrize("seed", [0, 42, 2**32 + 7, 2**64 - 1])
def test_stream_keys_are_jax_fold_in(seed):
    jax = pytest.importorskip("jax")
    if seed >= 2**32 and not jax.config.read("jax_enable_x64"):
        pytest.skip("JAX takes seeds of 2**32 and more only in its 64-bit mode")
    jax_seed = seed - 2**64 if seed >= 2**63 else seed  # JAX takes an int64's bits
    for stream in (0, 1, 2**32 - 1):
        theirs = jax.random.key_data(
            jax.random.fold_in(jax.random.PRNGKey(jax_seed, impl="threefry2x32"), stream)
        )
        ours = xr.stream_key(seed, stream, xp=NUMPY.xp, device=NUMPY.device)
        np.testing.assert_array_equal(unsigned(ours), np.asarray(theirs))


def draws(backend, step, float64=True):
    """One of each kind of draw on ``backend``, as NumPy arrays, each on its own stream.

    Each takes six blocks (odd and even counts of words and of normals among them), so
    that JAX's eager mode compiles the rounds for few shapes.
    """
    xp, device = backend.xp, backend.device
    on = {"xp": xp, "device": device}
    b0, b1 = xr.blocks(key(backend, 0), step, (2, 3), **on)
    return {
        "blocks": np.stack([unsigned(b0), unsigned(b1)]),
        "bits": unsigned(xr.bits(key(backend, 1), step, (11,), **on)),
        "uniform32": to_numpy(xr.uniform(key(backend, 2), step, (3, 4), dtype=xp.float32, **on)),
        **(
            {"uniform64": to_numpy(xr.uniform(key(backend, 3), step, (6,), dtype=xp.float64, **on))}
            if float64
            else {}
        ),
        "normal32": to_numpy(xr.normal(key(backend, 4), step, (11,), dtype=xp.float32, **on)),
        **(
            {"normal64": to_numpy(xr.normal(key(backend, 5), step, (5,), dtype=xp.float64, **on))}
            if float64
            else {}
        ),
        "bernoulli": to_numpy(xr.bernoulli(key(backend, 6), step, (3, 4), 0.3, **on)),
        "bernoulli_bits": to_numpy(xr.bernoulli(key(backend, 6), step, (5, 13), 0.5, **on)),
        "integers": to_numpy(xr.integers(key(backend, 7), step, (11,), 50_000, **on)),
        "permutation": to_numpy(xr.permutation(key(backend, 8), step, 6, **on)),
    }


# log, cos and sin are not correctly rounded everywhere: normals agree to a few ulps.
NORMAL_TOLERANCE = {"normal32": 1e-6, "normal64": 1e-14}


def assert_same_draws(ours, reference):
    assert ours.keys() == reference.keys()
    for name, expected in reference.items():
        assert ours[name].shape == expected.shape, name
        if name in NORMAL_TOLERANCE:
            assert ours[name].dtype == expected.dtype, name
            np.testing.assert_allclose(
                ours[name], expected, rtol=NORMAL_TOLERANCE[name], atol=0, err_msg=name
            )
        else:
            np.testing.assert_array_equal(ours[name], expected, err_msg=name, strict=True)


@pytest.mark.parametrize("step", [0, 1, 2**31, 2**32 - 1])
def test_every_backend_draws_numpys_numbers(backend_beside_numpy, step):
    """NumPy's own words are Random123's and JAX's (above)."""
    reference = draws(NUMPY, step)
    ours = draws(backend_beside_numpy, step)
    # the index dtype of a permutation is the library's own
    ours["permutation"] = ours["permutation"].astype(reference["permutation"].dtype)
    assert_same_draws(ours, reference)


def test_a_chunk_of_steps_is_the_steps_one_at_a_time(backend):
    steps = [0, 5, 6, 2**31 + 3]
    chunk = draws(backend, words(backend, steps))
    one_at_a_time = [draws(backend, step) for step in steps]
    stacked = {name: np.stack([d[name] for d in one_at_a_time]) for name in chunk}
    stacked["blocks"] = np.moveaxis(stacked["blocks"], 0, 1)  # (word, step, ...)
    assert_same_draws(chunk, stacked)


def test_a_grid_of_steps_draws_each_step_in_its_place():
    backend = NUMPY  # a property of the counter layout, like the chunks above
    # a two-dimensional array of steps: the draw of each, in place
    xp, on = backend.xp, {"xp": backend.xp, "device": backend.device}
    grid = to_numpy(
        xr.uniform(key(backend), words(backend, [[0, 5], [6, 9]]), (12,), dtype=xp.float32, **on)
    )
    for (i, j), step in zip([(0, 0), (0, 1), (1, 0), (1, 1)], [0, 5, 6, 9], strict=True):
        single = to_numpy(xr.uniform(key(backend), step, (12,), dtype=xp.float32, **on))
        np.testing.assert_array_equal(grid[i, j], single)


def test_a_longer_draw_begins_with_the_shorter_one():
    backend = NUMPY  # a property of the counter layout; the other backends draw NumPy's words
    xp, on = backend.xp, {"xp": backend.xp, "device": backend.device}
    for shorter, longer in [((5,), (12,)), ((1,), (2, 2))]:
        short = to_numpy(xr.bits(key(backend), 3, shorter, **on)).reshape(-1)
        long = to_numpy(xr.bits(key(backend), 3, longer, **on)).reshape(-1)
        np.testing.assert_array_equal(long[: short.size], short)
        short = to_numpy(xr.uniform(key(backend), 3, shorter, dtype=xp.float64, **on))
        long = to_numpy(xr.uniform(key(backend), 3, longer, dtype=xp.float64, **on))
        np.testing.assert_array_equal(long.reshape(-1)[: short.size], short.reshape(-1))


def test_empty_and_scalar_draws_have_their_shapes(backend):
    xp, on = backend.xp, {"xp": backend.xp, "device": backend.device}
    assert to_numpy(xr.uniform(key(backend), 0, (), dtype=xp.float32, **on)).shape == ()
    assert to_numpy(xr.normal(key(backend), 0, (0, 4), dtype=xp.float32, **on)).shape == (0, 4)
    assert to_numpy(xr.bits(key(backend), words(backend, [1, 2]), (0,), **on)).shape == (2, 0)
    assert to_numpy(xr.permutation(key(backend), 0, 0, **on)).shape == (0,)


def test_uniforms_are_multiples_of_their_resolution_in_0_1():
    xp, on = NUMPY.xp, {"xp": NUMPY.xp, "device": NUMPY.device}
    for dtype, resolution in ((xp.float32, 2.0**-24), (xp.float64, 2.0**-53)):
        u = to_numpy(xr.uniform(key(NUMPY), 0, (100_000,), dtype=dtype, **on))
        assert u.dtype == dtype
        assert u.min() >= 0
        assert u.max() < 1
        scaled = u.astype(np.float64) / resolution
        np.testing.assert_array_equal(scaled, np.floor(scaled))
        assert u.max() > 1 - 1e-4  # the whole interval is reached
        assert u.min() < 1e-4


def ks_statistic(sample, cdf):
    """Kolmogorov-Smirnov distance between the empirical CDF of ``sample`` and ``cdf``."""
    x = np.sort(sample)
    f = cdf(x)
    n = x.size
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


def normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def uniform_cdf(x):
    return np.clip(x, 0, 1)


# The Kolmogorov distribution's 1% point: sqrt(n) D exceeds it with probability 0.01.
KS_CRITICAL = 1.628


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniforms_and_normals_pass_moment_and_kolmogorov_smirnov_tests(dtype):
    xp, on = NUMPY.xp, {"xp": NUMPY.xp, "device": NUMPY.device}
    n = 100_000
    u = to_numpy(xr.uniform(key(NUMPY, 1), 9, (n,), dtype=getattr(xp, dtype), **on))
    z = to_numpy(xr.normal(key(NUMPY, 2), 9, (n,), dtype=getattr(xp, dtype), **on))
    z = z.astype(np.float64)
    # means within 4 standard errors; variances too (var of u**2 terms: 1/180, of z**2: 2)
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 4 * math.sqrt(1 / 180 / n)
    assert abs(z.mean()) < 4 * math.sqrt(1 / n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert math.sqrt(n) * ks_statistic(u, uniform_cdf) < KS_CRITICAL
    assert math.sqrt(n) * ks_statistic(z, normal_cdf) < KS_CRITICAL
    # the test can fail: normals are not uniform, and uniforms squared are not either
    assert math.sqrt(n) * ks_statistic(u**2, uniform_cdf) > KS_CRITICAL
    assert math.sqrt(n) * ks_statistic(z * 1.02, normal_cdf) > KS_CRITICAL


def test_neighbouring_streams_steps_and_elements_are_uncorrelated():
    xp, on = NUMPY.xp, {"xp": NUMPY.xp, "device": NUMPY.device}
    n = 100_000

    def u(stream, step):
        return to_numpy(xr.uniform(key(NUMPY, stream), step, (n,), dtype=xp.float64, **on))

    bound = 4 / math.sqrt(n)  # four standard errors of a correlation of independent samples
    pairs = {
        "streams": (u(10, 0), u(11, 0)),
        "steps": (u(10, 0), u(10, 1)),
        "seeds": (
            u(10, 0),
            to_numpy(
                xr.uniform(xr.stream_key(SEED + 1, 10, **on), 0, (n,), dtype=xp.float64, **on)
            ),
        ),
        "elements": (u(10, 0)[:-1], u(10, 0)[1:]),
    }
    for name, (a, b) in pairs.items():
        r = np.corrcoef(a, b)[0, 1]
        assert abs(r) < bound, f"{name}: correlation {r}"
    # and the two words of a block
    y0, y1 = xr.blocks(key(NUMPY), 0, (n,), **on)
    r = np.corrcoef(unsigned(y0).astype(np.float64), unsigned(y1).astype(np.float64))[0, 1]
    assert abs(r) < bound


def chi_square(counts):
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


# The chi-square distribution's 0.1% points for 4, 9 and 119 degrees of freedom.
CHI2_999 = {4: 18.467, 9: 27.877, 119: 172.42}


def test_integers_are_uniform_over_their_range():
    on = {"xp": NUMPY.xp, "device": NUMPY.device}
    values = to_numpy(xr.integers(key(NUMPY), 4, (100_000,), 10, **on))
    assert values.dtype == np.int32
    assert chi_square(np.bincount(values, minlength=10)) < CHI2_999[9]
    big = to_numpy(xr.integers(key(NUMPY), 4, (100_000,), 2**31 - 1, **on))
    assert big.min() >= 0
    assert big.max() < 2**31 - 1
    assert big.max() > 2**31 * 0.999
    rows = to_numpy(xr.integers(key(NUMPY), 4, (100_000,), 50_000, **on))
    assert rows.min() >= 0
    assert rows.max() < 50_000
    assert np.unique(rows).size > 40_000  # about 50000 (1 - e**-2) = 43,233 expected
    np.testing.assert_array_equal(to_numpy(xr.integers(key(NUMPY), 4, (9,), 1, **on)), 0)
    # the test can fail: squares modulo 10 are not uniform
    assert chi_square(np.bincount(values**2 % 10, minlength=10)) > CHI2_999[9]


def test_bernoulli_masks_are_true_with_probability_p():
    on = {"xp": NUMPY.xp, "device": NUMPY.device}
    n = 100_000
    for p in (0.5, 0.3, 0.9):
        mask = to_numpy(xr.bernoulli(key(NUMPY), 2, (n,), p, **on))
        assert mask.dtype == np.bool_
        assert abs(mask.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)
    assert not to_numpy(xr.bernoulli(key(NUMPY), 2, (n,), 0.0, **on)).any()
    assert to_numpy(xr.bernoulli(key(NUMPY), 2, (n,), 1.0, **on)).all()
    # p rounded to a multiple of 2**-16 takes 16 bits a mask: 0.3 is 19661 / 65536, and
    # mask 2j compares the high half of word j, mask 2j + 1 its low half
    words_ = unsigned(xr.bits(key(NUMPY), 2, (n // 2,), **on))
    mask = to_numpy(xr.bernoulli(key(NUMPY), 2, (n,), 0.3, **on))
    np.testing.assert_array_equal(mask[0::2], (words_ >> 16) < 19661)
    np.testing.assert_array_equal(mask[1::2], (words_ & 0xFFFF) < 19661)
    # a multiple of 2**-b takes b bits, from the high ones down: 0.25 two (the field
    # below 1), 0.5 one (the bit is 0)
    mask = to_numpy(xr.bernoulli(key(NUMPY), 2, (16 * (n // 2),), 0.25, **on))
    for k in range(16):
        np.testing.assert_array_equal(mask[k::16], (words_ >> (30 - 2 * k)) & 3 < 1)
    mask = to_numpy(xr.bernoulli(key(NUMPY), 2, (32 * (n // 2),), 0.5, **on))
    for k in range(32):
        np.testing.assert_array_equal(mask[k::32], (words_ >> (31 - k)) & 1 == 0)
    for p in (0.25, 0.5, 0.75):  # the probabilities hold with few bits too
        mask = to_numpy(xr.bernoulli(key(NUMPY), 3, (n,), p, **on))
        assert abs(mask.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_a_long_permutation_is_a_permutation_on_every_backend(backend):
    on = {"xp": backend.xp, "device": backend.device}
    perm = to_numpy(xr.permutation(key(backend), 7, 1000, **on))
    np.testing.assert_array_equal(np.sort(perm), np.arange(1000))
    reference = to_numpy(xr.permutation(key(NUMPY), 7, 1000, xp=NUMPY.xp, device=NUMPY.device))
    np.testing.assert_array_equal(perm, reference)


def test_permutations_are_permutations_and_uniform():
    xp, on = NUMPY.xp, {"xp": NUMPY.xp, "device": NUMPY.device}
    for n in (1, 2, 1000):
        perm = to_numpy(xr.permutation(key(NUMPY), 7, n, **on))
        np.testing.assert_array_equal(np.sort(perm), np.arange(n))
    a = to_numpy(xr.permutation(key(NUMPY), 7, 1000, **on))
    b = to_numpy(xr.permutation(key(NUMPY), 8, 1000, **on))
    assert (a != b).mean() > 0.9
    steps = xp.arange(5000, dtype=xp.int32, device=NUMPY.device)
    chunk = to_numpy(xr.permutation(key(NUMPY), steps, 5, **on))
    np.testing.assert_array_equal(np.sort(chunk, axis=1), np.tile(np.arange(5), (5000, 1)))
    # where item 0 lands, and which item comes first, are uniform over the 5 places
    assert chi_square(np.bincount(np.argmax(chunk == 0, axis=1), minlength=5)) < CHI2_999[4]
    assert chi_square(np.bincount(chunk[:, 0], minlength=5)) < CHI2_999[4]
    # and all 120 orders of 5 items come up about equally often
    codes = (chunk * 5 ** np.arange(5)).sum(axis=1)
    counts = np.unique(codes, return_counts=True)[1]
    assert counts.size == 120
    assert chi_square(counts) < CHI2_999[119]


@pytest.mark.backend("jax")
def test_jax_outside_its_64_bit_mode_draws_numpys_float32_numbers():
    jax = pytest.importorskip("jax")
    reference = draws(NUMPY, 2**31 + 5, float64=False)
    with jax.enable_x64(False):  # JAX's default, where there is no int64 and no float64
        backend = resolve_backend("jax")
        ours = draws(backend, 2**31 + 5, float64=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # JAX's own: float64 becomes float32
            with pytest.raises(ValueError, match="64-bit mode"):
                xr.uniform(key(backend), 0, (2,), dtype=backend.xp.float64, **on_(backend))
    ours["permutation"] = ours["permutation"].astype(reference["permutation"].dtype)
    assert_same_draws(ours, reference)


def on_(backend):
    return {"xp": backend.xp, "device": backend.device}


@pytest.mark.backend("jax")
def test_jax_jit_and_scan_draw_what_the_eager_code_draws():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    import jax

    backend = resolve_backend("jax")
    xp, on = backend.xp, {"xp": backend.xp, "device": backend.device}
    k = key(backend, 3)

    # the key is an argument, as the compiled runner passes it: a device array closed over
    # would be baked into the program as a constant, read back to the host to do so
    def draw(k, step):
        return (
            xr.uniform(k, step, (3, 4), dtype=xp.float32, **on),
            xr.bernoulli(k, step, (3, 4), 0.8, **on),
            xr.integers(k, step, (11,), 1000, **on),
            xr.permutation(k, step, 6, **on),
            xr.normal(k, step, (11,), dtype=xp.float32, **on),
        )

    compiled = jax.jit(draw)
    for step in (0, 12, 2**31 + 1):
        step_array = words(backend, step)
        with jax.transfer_guard("disallow"):  # nothing comes from the host but the program
            drawn = compiled(k, step_array)
        for eager, jitted in zip(draw(k, step), drawn, strict=True):
            np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
    with jax.transfer_guard("disallow"), pytest.raises(Exception, match="host-to-device"):
        compiled(k, np.int32(12))  # the guard is on: a step from the host is refused

    # a scan over steps, as a compiled training loop runs them, draws the chunk
    def body(carry, step):
        return carry, draw(k, step)

    steps = words(backend, [3, 4, 5])
    _, scanned = jax.jit(lambda s: jax.lax.scan(body, 0, s))(steps)
    for chunk, in_scan in zip(draw(k, steps), scanned, strict=True):
        np.testing.assert_array_equal(np.asarray(in_scan), np.asarray(chunk))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda on: xr.stream_key(-1, 0, **on), ValueError, "seed must satisfy"),
        (lambda on: xr.stream_key(2**64, 0, **on), ValueError, "seed must satisfy"),
        (lambda on: xr.stream_key(1.5, 0, **on), TypeError, "seed must be an int"),
        (lambda on: xr.stream_key(0, 2**32, **on), ValueError, "stream must satisfy"),
        (lambda on: xr.bits(xr.stream_key(0, 0, **on), -1, (2,), **on), ValueError, "step"),
        (lambda on: xr.bits(xr.stream_key(0, 0, **on), 0.5, (2,), **on), TypeError, "step"),
        (lambda on: xr.bits(xr.stream_key(0, 0, **on), 0, 3, **on), ValueError, "shape"),
        (lambda on: xr.bits(xr.stream_key(0, 0, **on), 0, (-1,), **on), ValueError, "shape"),
        (
            lambda on: xr.bernoulli(xr.stream_key(0, 0, **on), 0, (2,), 1.5, **on),
            ValueError,
            r"p must be in \[0, 1\]",
        ),
        (
            lambda on: xr.integers(xr.stream_key(0, 0, **on), 0, (2,), 0, **on),
            ValueError,
            "n must satisfy 1 <= n",
        ),
        (
            lambda on: xr.permutation(xr.stream_key(0, 0, **on), 0, 2**31, **on),
            ValueError,
            "n must satisfy",
        ),
        (
            lambda on: xr.uniform(xr.stream_key(0, 0, **on), 0, (2,), dtype=on["xp"].int32, **on),
            ValueError,
            "dtype must be float32 or float64",
        ),
        (
            lambda on: xr.bits(xr.stream_key(0, 0, **on), 0, (2**31,), **on),
            ValueError,
            "at most 2147483647 elements",
        ),
    ],
)
def test_bad_arguments_are_refused_with_what_to_do(backend, call, error, message):
    with pytest.raises(error, match=message):
        call({"xp": backend.xp, "device": backend.device})


@pytest.mark.backend("torch")
def test_torch_draws_make_and_use_no_tensor_off_the_device():
    """On torch's ``meta`` device (shapes, no data), every tensor a draw makes or takes
    is on that device: no host tensor that a CUDA device would have to copy in."""
    torch = pytest.importorskip("torch")
    from array_api_compat import torch as xp
    from torch.overrides import TorchFunctionMode

    devices = set()

    class RecordDevices(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            results = out if isinstance(out, tuple | list) else [out]
            for value in [*args, *kwargs.values(), *results]:
                if isinstance(value, torch.Tensor):
                    devices.add(value.device.type)
            return out

    device = torch.device("meta")
    on = {"xp": xp, "device": device}
    with RecordDevices():
        k = xr.stream_key(3, 1, **on)
        steps = xp.arange(4, dtype=xp.int32, device=device)
        drawn = [
            xr.uniform(k, steps, (3, 4), dtype=xp.float32, **on),
            xr.uniform(k, 5, (3,), dtype=xp.float64, **on),
            xr.normal(k, steps, (5,), dtype=xp.float32, **on),
            xr.bernoulli(k, steps, (7,), 0.3, **on),
            xr.integers(k, steps, (7,), 10, **on),
            xr.permutation(k, steps, 9, **on),
        ]
    assert devices == {"meta"}
    assert {d.device.type for d in drawn} == {"meta"}
    # the record can fail: a host scalar tensor in the same arithmetic is seen
    with RecordDevices():
        xp.full((1,), 2, dtype=xp.int32, device=device) + xp.asarray(3)
    assert devices == {"meta", "cpu"}
