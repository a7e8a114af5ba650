"""Question 5: GTSRB. A convolutional block written once and layered at least twice, and
the test accuracy of the trained model, measured here: the kernel loads each test image
through its own test_transform, the labels stay on the grader's side."""

from collections import Counter

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_vector
from autograder.data import gtsrb

BLOCKS_PROBE = '''
def probe():
    import torch.nn as nn
    found = []
    for name, module in model.named_modules():
        convs = sum(isinstance(m, nn.Conv2d) for m in module.modules())
        if name and convs and list(module.children()):
            kind = type(module)
            found.append({"name": name, "class": kind.__module__ + "." + kind.__qualname__,
                          "layers": [type(m).__name__ for m in module.modules()][1:]})
    return found
'''

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


def block_kind(block):
    """A block written as its own class counts by class; a built-in container by its layers."""
    if block["class"].startswith("torch.nn."):
        return "layers " + " > ".join(block["layers"])
    return block["class"]


@pytest.mark.item("5.1")
def test_a_conv_block_is_layered(nb):
    blocks = nb.probe(BLOCKS_PROBE)
    counts = Counter(block_kind(b) for b in blocks)
    if not counts or max(counts.values()) < 2:
        shown = ", ".join(f"{b['name']} ({b['class'].rsplit('.', 1)[-1]})" for b in blocks) or "none"
        raise CheckFailed(f"no convolutional block is used at least twice in model; its conv containers: {shown}")


@pytest.mark.item("5.2")
def test_test_accuracy(nb, data, given, measure):
    filenames, labels = gtsrb.heldout(data.source)
    image_dir = str(gtsrb.test_dir(data.view))
    predicted = nb.probe(PREDICT_PROBE, image_dir, filenames, 256, timeout=given["probe_timeout_s"])
    predicted = as_vector(predicted, "model's predicted classes", len(labels))
    measure(float(np.mean(predicted == labels)), note=f"{len(labels)} test images")
