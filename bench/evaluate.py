"""Seconds for the grader to evaluate a trained model on a GTSRB-sized test set: 12,630
images of 43 classes, read by the kernel from disk, through the student's test_transform,
batched, in eval mode without gradients, on the kernel's device; predictions only come
back, and accuracy is computed on the grader's side. This is the probe of item 5.2.

Prints the stages and, as its last line, the seconds for the evaluation. The model is a
small two-block CNN (untrained: only the time matters). On a machine with a GPU pass
``--device cuda``.

    python bench/evaluate.py [--images 12630] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.assignments.trivial.solution import notebook  # noqa: E402 (builds a notebook in code)

MODEL_CELL = """
import torch
import torch.nn as nn
import torchvision.transforms as T

class ConvBlock(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(), nn.Conv2d(o, o, 3, padding=1),
                                    nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.layers(x)

model = nn.Sequential(ConvBlock(3, 32), ConvBlock(32, 64), nn.Flatten(), nn.Linear(64 * 8 * 8, 43)).to(DEVICE)
test_transform = T.Compose([T.Resize((32, 32)), T.ToTensor(), T.Normalize((0.34, 0.31, 0.32), (0.27, 0.26, 0.27))])
"""


def load_check(name: str):
    path = ROOT / "rubrics" / "ece4179-2023" / "checks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12630)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    from autograder.data import gtsrb
    from autograder.grading.channel import KernelChannel
    from autograder.grading.execute import execute_notebook
    from autograder.sandboxes.sandbox import LocalSandbox, Place, private_dir

    check = load_check("check_q5")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        began = time.perf_counter()
        gtsrb.write_test(folder, args.images, np.random.default_rng(0))
        print(f"  wrote {args.images} synthetic test images in {time.perf_counter() - began:.1f} s")

        sandbox = LocalSandbox(isolate=False)  # no walls needed for the grader's own notebooks
        place = Place(workdir=folder, cwd=folder, private=private_dir())
        began = time.perf_counter()
        live = execute_notebook(
            notebook(MODEL_CELL, parameters=f"DEVICE = {args.device!r}"),
            name="model.ipynb",
            manager=sandbox.kernel_manager(place),
            cwd=folder,
            env=sandbox.kernel_env(place),
            cell_timeout=300,
            total_timeout=600,
            max_output_bytes=100_000,
        )
        assert not live.run.failed, live.run.failed[0].summary()
        print(f"  kernel with the model ready in {time.perf_counter() - began:.1f} s")
        try:
            channel = KernelChannel(live, timeout=3600)
            names, labels = gtsrb.heldout(folder)
            began = time.perf_counter()
            predicted = channel.probe(check.PREDICT_PROBE, str(gtsrb.test_dir(folder)), names, 256)
            accuracy = float(np.mean(np.asarray(predicted) == labels))
            seconds = time.perf_counter() - began
        finally:
            live.shutdown()
    print(f"  accuracy {accuracy:.3f} (an untrained model: about 1/43), {args.images / seconds:.0f} images/s, "
          f"device {args.device}")
    print(f"seconds to evaluate {args.images} test images: {seconds:.2f}")


if __name__ == "__main__":
    main()
