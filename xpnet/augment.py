"""Distorted digits, made on the device: random affine and elastic distortions of a batch.

Each output pixel ``p`` of an image samples the input, bilinearly, at::

    source(p) = c + M (p - c) + t + alpha * smooth(u)(p)

with ``c`` the image centre, ``M`` a random rotation, scale and shear, ``t`` a random
shift, and, for elastic distortions (Simard, Steinkraus and Platt, 2003), ``u`` a
field of uniform noise in [-1, 1] per pixel and axis, smoothed by a Gaussian of width
``sigma`` and scaled by ``alpha``. Pixels sampled from outside the image are blank.

The smoothed field is drawn small and mapped up. Smoothing an (H, W) field of
independent uniforms by the Gaussian matrices ``G_H`` and ``G_W`` gives a field
whose covariance is ``(G_H G_H^T) x (G_W G_W^T) / 3``; these matrices have few large
eigenvalues (for 28 pixels and sigma 4, eight of them hold all but 1e-5 of the
variance). So xpnet draws an (r, r) field ``z`` of uniforms in [-1, 1] and makes
``B_H z B_W^T``, with ``B = V sqrt(L)`` from the ``r`` leading eigenvectors ``V``
and eigenvalues ``L`` of ``G G^T``: the same covariance as Simard's field but for
what the ``r`` leading eigenvalues leave out (at most :data:`FIELD_VARIANCE_LEFT`),
from 128 uniforms an image instead of 1,568.

The noise is drawn by the training run, on the device, counted by the step
(:func:`xpnet.training.distortion_noise`), so that a seed gives the same distortions on
every backend and device and a compiled step draws its own; the warping itself
(:meth:`Augmentation.apply`) is array-API code on the batch's device, a few matrix
products and gathers for the whole batch, with no loop over images.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from xpnet import _checks
from xpnet._typing import Array, ArrayDType, Device, Namespace
from xpnet.backend import device_of

__all__ = ["AUGMENTATIONS", "FIELD_VARIANCE_LEFT", "Augmentation"]

#: The most of the smoothed field's variance that its small draw may leave out.
FIELD_VARIANCE_LEFT = 1e-5


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

    @property
    def field_shape(self) -> tuple[int, int]:
        """The shape of the elastic field as drawn, before it is mapped to the image's."""
        return _field_rank(self.image_shape[0], self.elastic_sigma), _field_rank(
            self.image_shape[1], self.elastic_sigma
        )

    def constants(self, xp: Namespace, dtype: ArrayDType, device: Device) -> dict[str, Array]:
        """The arrays :meth:`apply` needs besides the noise, made once per training run:
        for elastic distortions, the maps ``B_H`` (H, r) and ``B_W`` (W, r') from the
        drawn field to the smoothed one."""
        if not self.elastic:
            return {}
        H, W = self.image_shape
        return {
            name: xp.asarray(field_map(n, self.elastic_sigma), dtype=dtype, device=device)
            for name, n in (("field_rows", H), ("field_columns", W))
        }

    def apply(
        self, xp: Namespace, rows: Array, noise: dict[str, Array], constants: dict[str, Array]
    ) -> Array:
        """Distort images given as rows (N, H*W) with one batch's noise and the run's
        :meth:`constants`.

        ``noise`` holds ``affine`` (N, 5), in [-1, 1): rotation, scale, shear and the two
        shifts, each a fraction of its largest; for elastic distortions, ``field``
        (N, 2, r, r'), in [-1, 1), ``(r, r')`` the :attr:`field_shape`
        (:func:`xpnet.training.distortion_noise` draws them).

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

        def per_image(a: Array) -> Array:
            return xp.reshape(a, (N, 1, 1))

        y = per_image(m00) * i + per_image(m01) * j + (H - 1) / 2 + per_image(u[:, 3] * self.shift)
        x = per_image(m10) * i + per_image(m11) * j + (W - 1) / 2 + per_image(u[:, 4] * self.shift)
        if self.elastic:
            # Simard's smoothed field, from its small draw: B_H z B_W^T.
            field = xp.astype(noise["field"], dtype)  # (N, 2, r, r')
            field = constants["field_rows"] @ field @ constants["field_columns"].T
            y = y + self.elastic_alpha * field[:, 0, :, :]
            x = x + self.elastic_alpha * field[:, 1, :, :]
        return _bilinear(xp, rows, xp.reshape(y, (N, H * W)), xp.reshape(x, (N, H * W)), H, W)


def _bilinear(xp: Namespace, rows: Array, y: Array, x: Array, H: int, W: int) -> Array:
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


def gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) matrix of Gaussian weights: rows sum to one, zeros beyond the edge.

    Simard's smoothing of a field along an axis of ``n`` pixels."""
    k = np.arange(n)
    weights: np.ndarray = np.exp(-0.5 * ((k[:, None] - k[None, :]) / sigma) ** 2)
    rows: np.ndarray = weights / weights.sum(axis=1, keepdims=True)
    return rows


def field_map(n: int, sigma: float) -> np.ndarray:
    """(n, r) map ``B = V sqrt(L)`` of the ``r`` leading eigenpairs of ``G G^T``.

    ``G`` is :func:`gaussian_matrix`; ``r`` the fewest eigenvalues that leave out at
    most :data:`FIELD_VARIANCE_LEFT` of their sum. ``B B^T`` is then ``G G^T`` but for
    that part. Each eigenvector's sign is fixed (a positive product with the ramp
    ``1, 4, ..., n**2``), so the map is the same on every machine.
    """
    eigenvalues, vectors = _leading_eigenpairs(n, sigma)
    ramp = np.arange(1, n + 1, dtype=float) ** 2
    signs = np.where(ramp @ vectors < 0, -1.0, 1.0)
    field: np.ndarray = vectors * signs * np.sqrt(eigenvalues)
    return field


def _field_rank(n: int, sigma: float) -> int:
    return int(_leading_eigenpairs(n, sigma)[0].shape[0])


@functools.cache
def _leading_eigenpairs(n: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The eigenvalues (r,), largest first, and eigenvectors (n, r) that :func:`field_map` keeps."""
    G = gaussian_matrix(n, sigma)
    eigenvalues, vectors = np.linalg.eigh(G @ G.T)
    eigenvalues, vectors = np.clip(eigenvalues[::-1], 0, None), vectors[:, ::-1]
    left = 1 - np.cumsum(eigenvalues) / eigenvalues.sum()
    rank = int(np.argmax(left <= FIELD_VARIANCE_LEFT)) + 1
    eigenvalues.setflags(write=False)
    vectors.setflags(write=False)
    return eigenvalues[:rank], vectors[:, :rank]


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
