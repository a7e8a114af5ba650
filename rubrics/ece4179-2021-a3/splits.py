"""The course's split as the checks use it: the grader's own copy of ``hw3.npz`` (the test
labels only there), sent to the kernel, and fed to a network the way it does best on
training pictures (divided by 255, centred on 0.5, standardised per channel by the
training pictures or by ImageNet's constants: ``checks.inputs``), since students prepare
them in all these ways, often with transforms of batched tensors the grader cannot call on
single pictures. No loader or transform of the notebook's is used. Trusted side only."""

import numpy as np

from autograder.checks.inputs import choose_way, class_scores_as, picture_ways
from autograder.checks.training import class_scores

DATASET = "stl10-a3"
CLASSES = 10


def arrays(assignment, data):
    """Every array of the course's file by name, the withheld test labels included."""
    key = (DATASET, str(data.source))
    if key not in _CACHE:
        dataset = assignment.dataset(DATASET)
        _CACHE.clear()
        _CACHE[key] = {**dataset.visible(data.source), **dataset.heldout(data.source)}
    return _CACHE[key]


_CACHE = {}


def labels(assignment, data, split):
    """The labels (0-9) of ``split``."""
    return np.asarray(arrays(assignment, data)[f"y_{split}"], dtype=np.int64)


def way_for(nb, model, assignment, data):
    """How ``model`` takes its pictures: the way it does best on the training pictures."""
    found = arrays(assignment, data)
    scaled = found["x_train"].astype(np.float64) / 255.0
    ways = picture_ways(mean=list(scaled.mean(axis=(0, 1, 2))), std=list(scaled.std(axis=(0, 1, 2))))
    return choose_way(nb, model, found["x_train"], found["y_train"], ways, what="training", classes=CLASSES)


def scores(nb, model, assignment, data, split, *, transform=None, timeout=None):
    """``model``'s class scores on the pictures of ``split`` and their labels; measured once
    per grading (the kernel's objects do not change between items). With ``transform`` (a
    name of the notebook's: its transform of one PIL picture, as its dataset applies it),
    the pictures go through it, as the notebook's own results did; else they are fed the
    way the model does best."""
    key = ("scores", model, split, transform)
    if key not in nb.memo:
        images = arrays(assignment, data)[f"x_{split}"]
        if transform is not None:
            found = class_scores(nb, model, images, count=len(images), classes=CLASSES, transform=transform,
                                 batch=128, what=f"the {split} pictures through `{transform}`", timeout=timeout)
        else:
            way = way_for(nb, model, assignment, data)
            found = class_scores_as(nb, model, images, way, what=f"the {split} pictures fed {way.words}",
                                    classes=CLASSES, timeout=timeout)
        nb.memo[key] = found, labels(assignment, data, split)
    return nb.memo[key]
