"""Cayley-Dickson hypercomplex algebra (complex numbers, quaternions, octonions, ...) for Q2^n.

Components are along the last axis, whose length is a power of two. The product is
``(a, b)(c, d) = (a c - d* b, d a + b c*)``, the convention that gives the complex numbers,
Hamilton's quaternions and the octonions. :func:`sign_table` gives the same product as signs of basis
products, ``e_i e_j = S[i, j] e_(i XOR j)``, which Q2^n uses to form a covariance from the
cross-moments of the components without a recursive product per pixel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["conjugate", "product", "sign_table"]


def conjugate(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Conjugate along the last axis: keep the real part, negate the rest."""
    y = np.array(x, dtype=np.float64, copy=True)
    y[..., 1:] *= -1.0
    return y


def product(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Recursive product along the last axis; the reference :func:`sign_table` is checked against."""
    n = x.shape[-1]
    if n == 1:
        return x * y
    h = n // 2
    a, b = x[..., :h], x[..., h:]
    c, d = y[..., :h], y[..., h:]
    return np.concatenate([product(a, c) - product(conjugate(d), b), product(d, a) + product(b, conjugate(c))], -1)


def sign_table(dim: int) -> NDArray[np.float64]:
    """S with ``e_i e_j = S[i, j] e_(i XOR j)`` for the product of :func:`product`, dim a power of two.

    Built by the doubling rule on basis elements (g = conjugation signs of the half algebra)::

        [[S,        S^T       ],
         [S * g,   -S^T * g   ]]
    """
    s = np.ones((1, 1))
    while s.shape[0] < dim:
        h = s.shape[0]
        g = -np.ones(h)
        g[0] = 1.0
        s = np.block([[s, s.T], [s * g[None, :], -s.T * g[None, :]]])
    return s
