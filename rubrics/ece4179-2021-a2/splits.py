"""The splits of ``hw2_Q2_and_Q3_data.npz`` as the checks of questions 2 and 3 use them:
the images through the kernel's own given loader (the view holds them), the labels from the
grader's copy of the data (the test labels only there). Trusted side only."""

from autograder.checks.training import class_scores

DATASET = "hw2-q2q3"


def split(key):
    """The kernel's own array ``key``, as its given loader reads it from the view."""
    return f'load_q2q3(DATA_DIR)["{key}"]'


def labels(assignment, data, key):
    if key == "y_test":
        return assignment.dataset(DATASET).heldout(data.source)["y_test"]
    return assignment.dataset(DATASET).visible(data.source)[key]


def scores(nb, model, assignment, data, key):
    want = labels(assignment, data, "y" + key[1:])
    return class_scores(nb, model, split(key), count=len(want), classes=10, what=key), want
