"""Pretrained weights the course provides, as files: ``weights/<name>.pth`` state dicts.

Nothing is fetched from a hub: a notebook that asks torchvision for pretrained weights
(``vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1)``) is served ``weights/vit_b_16.pth``,
and any file of torchvision's own name a marker puts in ``weights/``
(``resnet18-f37072fd.pth``) answers the weight enum that fetches it. For tests there are
synthetic "pretrained" weights: a seeded random initialisation of a small Vision
Transformer (torchvision's class), so the grader can check that a frozen backbone is
unchanged without any real download.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

FOLDER = "weights"
NAME = "weights"  # what rubrics call it: the registry finds the module by it
WITHHELD = ""  # nothing: the course hands these out
#: A small configuration of torchvision's VisionTransformer, for tests on CPU.
TINY_VIT = {"image_size": 224, "patch_size": 32, "num_layers": 2, "num_heads": 2, "hidden_dim": 64, "mlp_dim": 128}
TINY_VIT_FILE = "vit_tiny.pth"
#: torch.hub's file names (the end of a weight enum's URL) the course's files answer.
DOWNLOADS = {"torch.hub:vit_b_16-c867db91.pth": f"{FOLDER}/vit_b_16.pth"}
_HUB_NAME = re.compile(r"[a-z][\w.]*-[0-9a-f]{8,}\.pth")


def served(view: Path) -> dict[str, str]:
    """The hub's files of the view's ``weights/`` under torchvision's own names."""
    folder = view / FOLDER
    found = sorted(folder.glob("*.pth")) if folder.is_dir() else []
    return {f"torch.hub:{path.name}": str(path) for path in found if _HUB_NAME.fullmatch(path.name)}


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    import torch
    from torchvision.models import VisionTransformer

    torch.manual_seed(seed + 23)
    (folder / FOLDER).mkdir(exist_ok=True)
    torch.save(VisionTransformer(**TINY_VIT).state_dict(), folder / FOLDER / TINY_VIT_FILE)
    if scale == "full":  # the architecture the handout uses, randomly initialised (330 MB)
        from torchvision.models import vit_b_16

        torch.save(vit_b_16().state_dict(), folder / FOLDER / "vit_b_16.pth")
    return [folder / FOLDER]


def missing(folder: Path) -> list[str]:
    return [] if (folder / FOLDER).is_dir() else [f"{folder / FOLDER} (pretrained weights) is missing"]


def stage(source: Path, view: Path) -> None:
    shutil.copytree(source / FOLDER, view / FOLDER, dirs_exist_ok=True)


def load_state(source: Path, name: str) -> dict:
    """A weights file as the course provides it (trusted side)."""
    import torch

    return torch.load(source / FOLDER / name, map_location="cpu", weights_only=True)
