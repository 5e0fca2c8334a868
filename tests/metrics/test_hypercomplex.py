"""Tests of dcstsf.metrics.hypercomplex: the sign table reproduces the Cayley-Dickson product."""

from __future__ import annotations

import numpy as np

from dcstsf.metrics.hypercomplex import product, sign_table


def test_sign_table_matches_recursive_product() -> None:
    for dim in (1, 2, 4, 8, 16):
        s = sign_table(dim)
        eye = np.eye(dim)
        for i in range(dim):
            for j in range(dim):
                expected = np.zeros(dim)
                expected[i ^ j] = s[i, j]
                np.testing.assert_array_equal(product(eye[i], eye[j]), expected)


def test_product_gives_complex_numbers_and_quaternions() -> None:
    # Quaternions: i j = k, j i = -k; complex: i i = -1.
    e = np.eye(4)
    np.testing.assert_array_equal(product(e[1], e[2]), e[3])
    np.testing.assert_array_equal(product(e[2], e[1]), -e[3])
    np.testing.assert_array_equal(product(np.array([0.0, 1.0]), np.array([0.0, 1.0])), [-1.0, 0.0])


def test_norm_is_multiplicative_up_to_the_octonions() -> None:
    rng = np.random.default_rng(0)
    for dim in (2, 4, 8):
        x, y = rng.normal(size=(2, 50, dim))
        np.testing.assert_allclose(
            np.linalg.norm(product(x, y), axis=-1), np.linalg.norm(x, axis=-1) * np.linalg.norm(y, axis=-1)
        )
