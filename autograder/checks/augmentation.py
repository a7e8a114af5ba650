"""Data augmentation tested as random. Randomness is a property of the transform across
seeds, not a share of pictures changed (a horizontal flip with p = 0.5 leaves about half of
them as they were): applied to each picture under several seeds, some picture must come
out differently, and under the same seed again each picture must come out as it did, so
that what varies is drawn from the seeded generators (torch's, numpy's and Python's). A
transform that varies under the same seed too draws from a generator of its own (random)
or from a counter or the clock (not): a marker reads it. The generators' states are
restored afterwards. The grader sends the
pictures (training images, which the kernel's view holds too) as uint8 H x W x C arrays;
the kernel makes PIL images of them, as torchvision's datasets do, and applies the
student's transform; only the count of pictures that differed comes back. A transform
written for tensors (``nn.Sequential`` of torchvision or kornia transforms, applied to
batches as many students do) gets each picture as a 3 x H x W float tensor in [0, 1], or
as a batch of one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..checking import CheckFailed, as_array, as_number
from ..errors import Referred

if TYPE_CHECKING:
    from ..grading.channel import KernelChannel

_APPLY = '''
def _apply(transform, image):
    """``transform`` of one picture: a PIL image, else a float tensor, else a batch of one."""
    import numpy as np
    import torch
    from PIL import Image
    try:
        return torch.as_tensor(np.asarray(transform(Image.fromarray(np.asarray(image, dtype=np.uint8)))))
    except Exception as error:
        tensor = torch.as_tensor(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        try:
            return torch.as_tensor(transform(tensor))
        except Exception:
            try:
                return torch.as_tensor(transform(tensor[None]))[0]
            except Exception:
                raise error from None
'''

PROBE = _APPLY + '''
def _subject():
    return __TRANSFORM__


def probe(images, seeds):
    import random
    import numpy as np
    import torch
    transform = _subject()

    def seeded(seed):
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    def same(a, b):
        return a.shape == b.shape and torch.equal(a, b)

    states = np.random.get_state(), random.getstate()
    differ = reproduced = 0
    try:
        with torch.random.fork_rng(devices=[]):
            for index, image in enumerate(images):
                results = []
                for k in range(seeds):
                    seeded(1000 * index + k)
                    results.append(_apply(transform, image))
                seeded(1000 * index)
                again = _apply(transform, image)
                differ += any(not same(results[0], other) for other in results[1:])
                reproduced += same(results[0], again)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    return {"differ": differ, "reproduced": reproduced}
'''

#: How many seeds each picture is augmented under.
SEEDS = 4


def _draws(nb: KernelChannel, transform: str, images: np.ndarray, timeout: float | None) -> dict[str, int]:
    if not transform.isidentifier():
        raise ValueError(f"{transform!r} is not a name")
    found = nb.probe(PROBE.replace("__TRANSFORM__", transform), np.asarray(images, dtype=np.uint8), SEEDS,
                     timeout=timeout)
    if not isinstance(found, dict):
        raise CheckFailed(f"the grader's trials of {transform} gave no counts")
    return {key: int(as_number(found.get(key), f"the number of images {key}")) for key in ("differ", "reproduced")}


def differing(nb: KernelChannel, transform: str, images: np.ndarray, *, timeout: float | None = None) -> int:
    """How many of ``images`` (N x H x W x C uint8) ``transform`` turned out differently under different seeds."""
    return _draws(nb, transform, images, timeout)["differ"]


def expect_random(nb: KernelChannel, transform: str, images: np.ndarray, *, timeout: float | None = None) -> None:
    """Fail unless ``transform`` augments at random: some picture of ``images`` differs
    under different seeds, and each comes out the same under the same seed again."""
    count = len(images)
    found = _draws(nb, transform, images, timeout)
    if not found["differ"]:
        raise CheckFailed(f"{transform} gave the same result under {SEEDS} different seeds for each of {count} "
                          "training images: it does not augment at random")
    if found["reproduced"] < count:  # a generator of its own (np.random.default_rng()), or a counter: a marker reads it
        raise Referred(f"{transform} gave a different result under the same seed for {count - found['reproduced']} "
                       f"of {count} training images: what varies is not drawn from the seeded generators (torch's, "
                       "numpy's or Python's) but from a generator of its own, which is random, or from a counter "
                       "or the clock, which is not; a marker reads the transform")


TRANSFORMED_PROBE = _APPLY + '''
def _subject():
    return __TRANSFORM__


def probe(images):
    import torch
    transform = _subject()
    return torch.stack([_apply(transform, image) for image in images]).float()
'''


def transformed(nb: KernelChannel, transform: str, images: np.ndarray, *, timeout: float | None = None) -> np.ndarray:
    """What ``transform`` makes of each of ``images`` (N x H x W x C uint8, as PIL pictures), stacked."""
    if not transform.isidentifier():
        raise ValueError(f"{transform!r} is not a name")
    found = nb.probe(TRANSFORMED_PROBE.replace("__TRANSFORM__", transform), np.asarray(images, dtype=np.uint8),
                     timeout=timeout)
    return as_array(found, f"{transform}'s tensors")
