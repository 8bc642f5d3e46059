"""Loading trained world models from Lightning checkpoints, safely (`weights_only=True`)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from .config import ModelConfig
from .world_model import DriveWorldModel


def read_checkpoint(path: str | Path) -> dict:
    """`torch.load(path, weights_only=True)`; a missing file → `FileNotFoundError`, an unreadable or
    non-drivewm file → `ValueError` saying so."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise ValueError(f"checkpoint {path} is corrupt or not loadable with weights_only=True: {err}") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise ValueError(f"checkpoint {path} is not a drivewm checkpoint (no state_dict / hyper_parameters.config)")
    return ckpt


def load_world_model(path: str | Path, device: torch.device | str = "cpu") -> DriveWorldModel:
    """Build a `DriveWorldModel` from its saved config and load its weights (strict), in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: corrupt file, or weights that do not match the saved config (names the keys).
    """
    ckpt = read_checkpoint(path)
    config = ModelConfig.from_dict(dict(ckpt["hyper_parameters"]["config"]))
    model = DriveWorldModel(config)
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"checkpoint {path} does not match its model config: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {[(k, list(state[k].shape), list(own[k].shape)) for k in wrong[:5]]}"
        )
    model.load_state_dict(state)
    return model.to(device).eval()
