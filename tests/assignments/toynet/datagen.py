"""The toy network assignment's stand-in: three Gaussian blobs in 8 dimensions."""

import numpy as np


def blobs(scale: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 5)
    count = {"small": 300, "full": 3000}[scale]
    centres = rng.normal(0, 3, (3, 8))

    def draw(n):
        labels = rng.integers(0, 3, n)
        return centres[labels] + rng.normal(0, 1, (n, 8)), labels

    x_train, y_train = draw(count)
    x_test, y_test = draw(count // 2)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
