"""Question 7: face landmarks with a frozen ViT. The backbone's weights must need no
gradient and be bit for bit those of the pretrained file (hashes compared here, on the
grader's side, with the file itself); the head gives 136 numbers; the landmark MSE in
pixels is measured on test images whose landmarks the kernel never had."""

import hashlib
from pathlib import PurePosixPath

import numpy as np
import pytest

from autograder.checking import CheckFailed, as_array
from autograder.data import landmarks, weights

FINGERPRINTS_PROBE = '''
def probe():
    import hashlib
    out = []
    for name, parameter in model.named_parameters():
        values = parameter.detach().float().cpu().contiguous().numpy()
        out.append({"name": name, "shape": list(values.shape), "requires_grad": bool(parameter.requires_grad),
                    "sha256": hashlib.sha256(values.tobytes()).hexdigest()})
    return out
'''

PREDICT_PROBE = '''
def probe(npz_path, count, batch_size):
    import numpy as np
    import torch
    with np.load(npz_path) as stored:
        images = stored["test_images"][:count]
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.stack([image_transform(image) for image in images[start:start + batch_size]])
            out.append(np.asarray(to_pixels(model(batch.to(device)))))
    model.train(training)
    return np.concatenate(out)
'''

OUTPUTS_PROBE = '''
def probe(npz_path):
    import numpy as np
    import torch
    with np.load(npz_path) as stored:
        image = stored["test_images"][0]
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    with torch.no_grad():
        shape = list(model(image_transform(image)[None].to(device)).shape)
    model.train(training)
    return shape
'''


def pretrained(data, parameters, given):
    """Hashes of the backbone tensors in the pretrained file the notebook was told to load."""
    name = PurePosixPath(str(parameters.get("VIT_WEIGHTS", given["weights_file"]))).name
    state = weights.load_state(data.source, name)
    return name, {
        key: hashlib.sha256(tensor.float().contiguous().numpy().tobytes()).hexdigest()
        for key, tensor in state.items()
        if not key.startswith("heads") and tensor.numel() > 1 and tensor.std() > 0  # constants match anything
    }


@pytest.mark.item("7.2")
def test_backbone_frozen_and_unchanged(nb, data, parameters, given):
    name, backbone = pretrained(data, parameters, given)
    found = nb.probe(FINGERPRINTS_PROBE)
    changed, trainable = [], []
    for key, digest in backbone.items():
        matches = [f for f in found if f["sha256"] == digest]
        if not matches:
            changed.append(key)
        elif any(f["requires_grad"] for f in matches):
            trainable.append(key)
    if changed:
        raise CheckFailed(
            f"{len(changed)} of {len(backbone)} backbone tensors of {name} are not in model unchanged "
            f"(first: {changed[0]}): the backbone was trained or replaced"
        )
    if trainable:
        raise CheckFailed(f"{len(trainable)} backbone tensors still require gradients (first: {trainable[0]})")


@pytest.mark.item("7.3")
def test_head_gives_136_numbers(nb, data):
    shape = nb.probe(OUTPUTS_PROBE, str(data.view / landmarks.FILE))
    if int(np.prod(shape)) != 136:
        raise CheckFailed(f"model should give 136 numbers (68 landmarks) per image, gave shape {tuple(shape)} for one")


@pytest.mark.item("7.4")
def test_landmark_error(nb, data, given, measure):
    truth = landmarks.heldout(data.source)
    predicted = nb.probe(PREDICT_PROBE, str(data.view / landmarks.FILE), len(truth), 64,
                         timeout=given["probe_timeout_s"])
    predicted = as_array(predicted, "to_pixels(model(...)) on the test images", shape=truth.shape)
    measure(float(np.mean((predicted - truth) ** 2)), note=f"{len(truth)} test images")
