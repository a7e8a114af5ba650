"""Question 5: GTSRB. A convolutional block written once and layered at least twice, and
the test accuracy of the trained model, measured here: the kernel loads each test image
through its own test_transform, the labels stay on the grader's side."""

import numpy as np
import pytest

from autograder.checking import as_vector
from autograder.checks.layers import expect_repeated_block
from autograder.data import gtsrb

PREDICT_PROBE = '''
def probe(image_dir, filenames, batch_size):
    import os
    import torch
    from PIL import Image
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    predicted = []
    with torch.no_grad():
        for start in range(0, len(filenames), batch_size):
            names = filenames[start:start + batch_size]
            batch = torch.stack([test_transform(Image.open(os.path.join(image_dir, n)).convert("RGB")) for n in names])
            predicted.append(model(batch.to(device)).argmax(dim=1).cpu())
    model.train(training)
    return torch.cat(predicted)
'''


@pytest.mark.item("5.1")
def test_a_conv_block_is_layered(nb):
    expect_repeated_block(nb, "model", times=2)


@pytest.mark.item("5.2")
def test_test_accuracy(nb, data, given, measure):
    filenames, labels = gtsrb.heldout(data.source)
    image_dir = str(gtsrb.test_dir(data.view))
    predicted = nb.probe(PREDICT_PROBE, image_dir, filenames, 256, timeout=given["probe_timeout_s"])
    predicted = as_vector(predicted, "model's predicted classes", len(labels))
    measure(float(np.mean(predicted == labels)), note=f"{len(labels)} test images")
