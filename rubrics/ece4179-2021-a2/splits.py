"""The course's images and labels as the checks of questions 2 to 4 use them: the grader's
own copy of the data (the test labels only there), sent to the kernel, and fed to a model
the way it does best on the training images (divided by 255 or not, standardised, flat or
as 28 x 28 pictures: ``checks.inputs``), since students prepare them in all these ways.
No loader of the notebook's is used. Trusted side only."""

from autograder.checks.inputs import choose_way, class_scores_as, image_ways

SHAPES = [(784,), (1, 28, 28), (28, 28)]  # an image, as the networks of students take it


def arrays(assignment, data, dataset):
    """Every array of ``dataset`` by name, images one per row, the withheld ones included."""
    source = assignment.dataset(dataset)
    return {**source.visible(data.source), **source.heldout(data.source)}


def ways(images):
    scaled = images.astype("float64") / 255.0
    return image_ways((1, 28, 28), mean=float(scaled.mean()), std=float(scaled.std()))


def way_for(nb, model, assignment, data, dataset):
    """How ``model`` takes its images: the way it does best on the training images."""
    found = arrays(assignment, data, dataset)
    return choose_way(nb, model, found["x_train"], found["y_train"], ways(found["x_train"]), what="training",
                      classes=10)


def scores(nb, model, assignment, data, key, dataset="hw2-q2q3", way=None):
    """``model``'s scores on the images ``key`` (x_train, x_val, x_test) and their labels,
    fed ``way`` (default: the way it does best on the training images)."""
    found = arrays(assignment, data, dataset)
    way = way or way_for(nb, model, assignment, data, dataset)
    labels = found["y" + key[1:]]
    return class_scores_as(nb, model, found[key], way, what=key, classes=10), labels
