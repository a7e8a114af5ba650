"""Pretrained weights the course provides, as files: ``weights/<name>.pth`` state dicts.

Nothing is fetched from a hub: a notebook that asks torchvision for pretrained weights
(``vit_b_16(weights=ViT_B_16_Weights.IMAGENET1K_V1)``) is served ``weights/vit_b_16.pth``,
and any file of torchvision's own name a marker puts in ``weights/``
(``resnet18-f37072fd.pth``) answers the weight enum that fetches it. For tests there are
synthetic "pretrained" weights: a seeded random initialisation of a small Vision
Transformer (torchvision's class), so the grader can check that a frozen backbone is
unchanged without any real download.

Hugging Face models are folders as ``save_pretrained`` writes them (or as
``huggingface-cli download <repo> --local-dir`` leaves them), under ``weights/hf/<repo id>/``:
``from_pretrained("google/vit-base-patch16-224-in21k")`` in the notebook loads
``weights/hf/google/vit-base-patch16-224-in21k/``. The stand-ins for the ViT repositories
students use are one-layer ViTs of the base model's width (768, so a head written for
the base model fits) with 32-pixel patches, seeded.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

FOLDER = "weights"
NAME = "weights"  # what rubrics call it: the registry finds the module by it
WITHHELD = ""  # nothing: the course hands these out
#: A small configuration of torchvision's VisionTransformer, for tests on CPU.
TINY_VIT = {"image_size": 224, "patch_size": 32, "num_layers": 2, "num_heads": 2, "hidden_dim": 64, "mlp_dim": 128}
TINY_VIT_FILE = "vit_tiny.pth"
#: torch.hub's file names (the end of a weight enum's URL) the course's files answer.
DOWNLOADS = {"torch.hub:vit_b_16-c867db91.pth": f"{FOLDER}/vit_b_16.pth"}
_HUB_NAME = re.compile(r"[a-z][\w.]*-[0-9a-f]{8,}\.pth")
#: Where Hugging Face repositories are kept: ``weights/hf/<owner>/<name>/``.
HF_FOLDER = "hf"
#: The Hugging Face repositories the stand-ins answer: the ViT base models students load.
HF_STAND_INS = ("google/vit-base-patch16-224", "google/vit-base-patch16-224-in21k")
TINY_HF_VIT: dict[str, Any] = {"hidden_size": 768, "num_hidden_layers": 1, "num_attention_heads": 12,
                               "intermediate_size": 768, "image_size": 224, "patch_size": 32}


def served(view: Path) -> dict[str, str]:
    """The hub's files of the view's ``weights/`` under torchvision's own names."""
    folder = view / FOLDER
    found = sorted(folder.glob("*.pth")) if folder.is_dir() else []
    hub = {f"torch.hub:{path.name}": str(path) for path in found if _HUB_NAME.fullmatch(path.name)}
    return {**hub, **{f"huggingface:{repo}": str(path) for repo, path in hf_repos(folder).items()}}


def hf_repos(folder: Path) -> dict[str, Path]:
    """The Hugging Face repositories under ``folder``'s ``hf/``: ``owner/name`` -> its folder
    (one that holds a ``config.json``)."""
    root = folder / HF_FOLDER
    if not root.is_dir():
        return {}
    return {config.parent.relative_to(root).as_posix(): config.parent
            for config in sorted(root.glob("*/*/config.json"))}


def synth(folder: Path, *, scale: str, seed: int) -> list[Path]:
    import torch
    from torchvision.models import VisionTransformer

    torch.manual_seed(seed + 23)
    (folder / FOLDER).mkdir(exist_ok=True)
    torch.save(VisionTransformer(**TINY_VIT).state_dict(), folder / FOLDER / TINY_VIT_FILE)
    if scale == "full":  # the architecture the handout uses, randomly initialised (330 MB)
        from torchvision.models import vit_b_16

        torch.save(vit_b_16().state_dict(), folder / FOLDER / "vit_b_16.pth")
    _synth_hf(folder / FOLDER / HF_FOLDER, seed)
    return [folder / FOLDER]


def _synth_hf(root: Path, seed: int) -> None:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    for number, repo in enumerate(HF_STAND_INS):
        torch.manual_seed(seed + 29 + number)
        ViTModel(ViTConfig(**TINY_HF_VIT)).save_pretrained(root / repo)
        ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                          image_std=[0.5] * 3).save_pretrained(root / repo)


def missing(folder: Path) -> list[str]:
    return [] if (folder / FOLDER).is_dir() else [f"{folder / FOLDER} (pretrained weights) is missing"]


def stage(source: Path, view: Path) -> None:
    shutil.copytree(source / FOLDER, view / FOLDER, dirs_exist_ok=True)


def load_state(source: Path, name: str) -> dict:
    """A weights file as the course provides it (trusted side): ``<name>.pth`` in ``weights/``,
    or a Hugging Face repository's ``owner/name`` (its safetensors files)."""
    import torch

    repo = hf_repos(source / FOLDER).get(name)
    if repo is None:
        return torch.load(source / FOLDER / name, map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    state: dict = {}
    for part in sorted(repo.glob("*.safetensors")):
        state.update(load_file(part))
    return state


def provided(source: Path) -> list[str]:
    """Every pretrained model the course's folder provides: ``.pth`` files and Hugging Face repositories."""
    folder = source / FOLDER
    files = sorted(path.name for path in folder.glob("*.pth")) if folder.is_dir() else []
    return files + list(hf_repos(folder))
