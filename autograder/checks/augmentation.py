"""Data augmentation tested as random: a transform applied twice to the same picture under
different seeds must give different results for most pictures. The grader sends the
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


def probe(images):
    import torch
    transform = _subject()
    differ = 0
    for index, image in enumerate(images):
        torch.manual_seed(2 * index)
        first = _apply(transform, image)
        torch.manual_seed(2 * index + 1)
        second = _apply(transform, image)
        differ += bool(first.shape != second.shape or not torch.equal(first, second))
    return differ
'''


def differing(nb: KernelChannel, transform: str, images: np.ndarray, *, timeout: float | None = None) -> int:
    """How many of ``images`` (N x H x W x C uint8) ``transform`` turned out differently twice."""
    if not transform.isidentifier():
        raise ValueError(f"{transform!r} is not a name")
    found = nb.probe(PROBE.replace("__TRANSFORM__", transform), np.asarray(images, dtype=np.uint8), timeout=timeout)
    return int(as_number(found, "the number of images augmented differently"))


def expect_random(nb: KernelChannel, transform: str, images: np.ndarray, *, timeout: float | None = None) -> None:
    """Fail unless ``transform`` augments at random: different results for at least half of ``images``."""
    count = len(images)
    differ = differing(nb, transform, images, timeout=timeout)
    if differ < count // 2:
        raise CheckFailed(f"{transform} gave the same result twice for {count - differ} of {count} training images "
                          "(under different seeds): it does not augment at random")


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
