"""The seed example's data, in one place for the demo, the tests and the benchmarks.

Hours of sleep and of study the night before -> test score, three students.
"""

import numpy as np


def seed_example(dtype=np.float64):
    """The normalised seed data: ``X`` (3, 2) hours / their column maxima, ``y`` (3, 1)
    scores / 100.

    Returns
    -------
    X : ndarray (3, 2)
    y : ndarray (3, 1)
    """
    X = np.array([[3.0, 5.0], [5.0, 1.0], [10.0, 2.0]], dtype=dtype)
    y = np.array([[75.0], [82.0], [93.0]], dtype=dtype)
    return X / X.max(axis=0), y / np.dtype(dtype).type(100)


def seed_weights():
    """The seed's initial weights: the legacy generator seeded 0 draws ``W1 = randn(2, 3)``
    then ``W2 = randn(3, 1)``.

    Returns
    -------
    list of two float64 ndarrays, (2, 3) and (3, 1)
    """
    legacy = np.random.RandomState(0)
    return [legacy.randn(2, 3), legacy.randn(3, 1)]
