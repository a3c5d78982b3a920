"""Distorted digits, made on the device: random affine and elastic distortions of a batch.

Each output pixel ``p`` of an image samples the input, bilinearly, at::

    source(p) = c + M (p - c) + t + alpha * smooth(u)(p)

with ``c`` the image centre, ``M`` a random rotation, scale and shear, ``t`` a random
shift, and, for elastic distortions (Simard, Steinkraus and Platt, 2003), ``u`` a
field of uniform noise in [-1, 1] per pixel and axis, smoothed by a Gaussian of width
``sigma`` and scaled by ``alpha``. Pixels sampled from outside the image are blank.

The randomness is drawn on the host by NumPy (:meth:`Augmentation.draw`), so that a
seed gives the same distortions on every backend; the warping itself
(:meth:`Augmentation.apply`) is array-API code on the batch's device, a few matrix
products and gathers for the whole batch, with no loop over images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from xpnet import _checks
from xpnet.backend import device_of

__all__ = ["AUGMENTATIONS", "Augmentation"]


@dataclass(frozen=True)
class Augmentation:
    """How much to distort. All zero: the identity.

    Attributes
    ----------
    rotation : float
        Largest rotation, in degrees, either way.
    scale : float
        Largest relative change of size (0.1: from 0.9 to 1.1 times).
    shear : float
        Largest shear factor.
    shift : float
        Largest shift, in pixels, along each axis.
    elastic_alpha : float
        Scale of the elastic displacement field, in pixels (Simard's alpha); 0 for none.
    elastic_sigma : float
        Width of the Gaussian that smooths it, in pixels.
    image_shape : (int, int)
        Height and width of the images (the rows are images in C order).
    """

    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    shift: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0
    image_shape: tuple[int, int] = (28, 28)

    def __post_init__(self) -> None:
        for name in ("rotation", "scale", "shear", "shift", "elastic_alpha"):
            _checks.real(name, getattr(self, name), low=0.0, low_open=False)
        _checks.real("elastic_sigma", self.elastic_sigma, low=0.0, low_open=True)
        if self.scale >= 1:
            raise ValueError(
                f"scale must be below 1 (a size factor of 1 - scale), got {self.scale}"
            )
        shape = self.image_shape
        if not isinstance(shape, tuple) or len(shape) != 2:
            raise TypeError(f"image_shape must be (height, width), got {shape!r}")
        for n in shape:
            _checks.positive_int("image_shape", n)

    @property
    def elastic(self) -> bool:
        return self.elastic_alpha > 0

    def draw(self, rng: Any, count: int, batch: int) -> dict[str, np.ndarray]:
        """The randomness of ``count`` batches of ``batch`` images, as float32 arrays.

        Returns ``affine`` (count, batch, 5): uniform in [-1, 1] for rotation, scale,
        shear and the two shifts; and, for elastic distortions, ``field`` (count,
        batch, 2, H, W): uniform in [-1, 1]. Drawn step by step, so that ``count``
        steps at once are the same as ``count`` single steps.
        """
        steps = [self._draw_step(rng, batch) for _ in range(count)]
        return {name: np.stack([step[name] for step in steps]) for name in steps[0]}

    def _draw_step(self, rng: Any, batch: int) -> dict[str, np.ndarray]:
        noise = {"affine": _uniform(rng, (batch, 5))}
        if self.elastic:
            noise["field"] = _uniform(rng, (batch, 2, *self.image_shape))
        return noise

    def constants(self, xp: ModuleType, dtype: Any, device: Any) -> dict[str, Any]:
        """The arrays :meth:`apply` needs besides the noise, made once per training run:
        the Gaussian smoothing matrices of elastic distortions."""
        if not self.elastic:
            return {}
        H, W = self.image_shape
        return {
            name: xp.asarray(_gaussian_matrix(n, self.elastic_sigma), dtype=dtype, device=device)
            for name, n in (("smooth_rows", H), ("smooth_columns", W))
        }

    def apply(
        self, xp: ModuleType, rows: Any, noise: dict[str, Any], constants: dict[str, Any]
    ) -> Any:
        """Distort images given as rows (N, H*W) with one batch's ``noise`` (from :meth:`draw`)
        and the run's :meth:`constants`.

        Returns
        -------
        array, shape (N, H*W)
            The distorted images, same dtype and device.
        """
        H, W = self.image_shape
        N = rows.shape[0]
        device, dtype = device_of(rows), rows.dtype
        u = xp.astype(noise["affine"], dtype)
        angle = u[:, 0] * (self.rotation * math.pi / 180)
        scale = 1 + u[:, 1] * self.scale
        shear = u[:, 2] * self.shear
        cos, sin = xp.cos(angle) * scale, xp.sin(angle) * scale
        # M = scale * [[cos, -sin], [sin, cos]] @ [[1, shear], [0, 1]], acting on (row, column)
        m00, m01 = cos, cos * shear - sin
        m10, m11 = sin, sin * shear + cos
        i = xp.reshape(xp.arange(H, dtype=dtype, device=device), (1, H, 1)) - (H - 1) / 2
        j = xp.reshape(xp.arange(W, dtype=dtype, device=device), (1, 1, W)) - (W - 1) / 2

        def per_image(a: Any) -> Any:
            return xp.reshape(a, (N, 1, 1))

        y = per_image(m00) * i + per_image(m01) * j + (H - 1) / 2 + per_image(u[:, 3] * self.shift)
        x = per_image(m10) * i + per_image(m11) * j + (W - 1) / 2 + per_image(u[:, 4] * self.shift)
        if self.elastic:
            # Gaussian smoothing, separably: products with an (H, H) and a (W, W) matrix.
            field = xp.astype(noise["field"], dtype)  # (N, 2, H, W)
            field = constants["smooth_rows"] @ field @ constants["smooth_columns"].T
            y = y + self.elastic_alpha * field[:, 0, :, :]
            x = x + self.elastic_alpha * field[:, 1, :, :]
        return _bilinear(xp, rows, xp.reshape(y, (N, H * W)), xp.reshape(x, (N, H * W)), H, W)


def _bilinear(xp: ModuleType, rows: Any, y: Any, x: Any, H: int, W: int) -> Any:
    """Sample images (N, H*W) at (y, x) (N, H*W), bilinearly; blank outside the image."""
    y0, x0 = xp.floor(y), xp.floor(x)
    wy, wx = y - y0, x - x0
    info = xp.__array_namespace_info__()
    index_dtype = info.default_dtypes(device=device_of(rows))["indexing"]
    result = xp.zeros_like(rows)
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):  # fmt: skip
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy <= H - 1) & (xx >= 0) & (xx <= W - 1)
        flat = xp.astype(xp.clip(yy, min=0, max=H - 1) * W + xp.clip(xx, min=0, max=W - 1),
                         index_dtype)  # fmt: skip
        corner = xp.take_along_axis(rows, flat, axis=1)
        result += corner * (weight * xp.astype(inside, rows.dtype))
    return result


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) matrix of Gaussian weights: rows sum to one, zeros beyond the edge."""
    k = np.arange(n)
    weights = np.exp(-0.5 * ((k[:, None] - k[None, :]) / sigma) ** 2)
    return weights / weights.sum(axis=1, keepdims=True)


def _uniform(rng: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform in [-1, 1], float32, from a Generator or NumPy's global state."""
    if isinstance(rng, np.random.Generator):
        return rng.random(shape, dtype=np.float32) * 2 - 1
    return (rng.random_sample(shape) * 2 - 1).astype(np.float32)


#: Distortions by recipe name: affine (the classic rotation, scale, shear and shift),
#: elastic (Simard's alpha 34, sigma 4, for 28x28 digits), and both.
AUGMENTATIONS: dict[str, Augmentation | None] = {
    "none": None,
    "affine": Augmentation(rotation=12, scale=0.1, shear=0.15, shift=2),
    "elastic": Augmentation(elastic_alpha=34, elastic_sigma=4),
    # Together, milder affine distortions: the elastic field adds its own.
    "affine+elastic": Augmentation(
        rotation=8, scale=0.08, shear=0.1, shift=1.5, elastic_alpha=34, elastic_sigma=4
    ),
}
