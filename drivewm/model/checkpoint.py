"""Loading trained world models from Lightning checkpoints, safely (`weights_only=True`).

Every refusal names the checkpoint: a missing file or a folder, a truncated or corrupt file, a
pickle that needs more than tensors and plain containers (`weights_only=True` never runs it), a
file that is not a drivewm checkpoint, weights that do not match the saved config, and weights
that are NaN or infinite (a diverged run) — those would otherwise surface much later as a NaN
prediction or a NaN agent state.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

import torch

from .config import ModelConfig
from .world_model import DriveWorldModel


def read_checkpoint(path: str | Path, require_drivewm: bool = True) -> dict:
    """`torch.load(path, weights_only=True)`.

    Args:
        path: the checkpoint file.
        require_drivewm: also require a drivewm world-model checkpoint (`state_dict` and
            `hyper_parameters.config`); False accepts any Lightning checkpoint dict (resuming `fit`).

    Raises:
        FileNotFoundError: no such file. IsADirectoryError: a folder.
        ValueError: unreadable, corrupt, unsafe (needs arbitrary pickled objects) or not a drivewm checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory, expected a .ckpt file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load on arbitrary bytes raises anything (KeyError, struct.error, …)
        raise ValueError(f"checkpoint {path} {_load_failure(err)}") from err
    if not isinstance(ckpt, dict):
        raise ValueError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a checkpoint dict")
    if require_drivewm and (
        "state_dict" not in ckpt or "config" not in (ckpt.get("hyper_parameters") or {}) or not _is_state(ckpt)
    ):
        raise ValueError(f"checkpoint {path} is not a drivewm checkpoint (no state_dict / hyper_parameters.config)")
    return ckpt


def _load_failure(err: BaseException) -> str:
    """Why `torch.load(weights_only=True)` refused a file, in a few words."""
    text = " ".join(str(err).split())
    unsafe = re.search(r"GLOBAL ([\w.]+)", text)
    if unsafe:
        return (
            f"holds pickled Python objects other than tensors ({unsafe.group(1)}): refused, since loading it "
            "could run code (weights_only=True)"
        )
    if isinstance(err, EOFError | zipfile.BadZipFile) or "PytorchStreamReader" in text or "central directory" in text:
        return "is truncated or corrupt (not a complete torch checkpoint archive)"
    reason = text.split("WeightsUnpickler error:")[-1].split("Check the documentation")[0].strip()
    return f"is corrupt or not a torch checkpoint ({type(err).__name__}: {reason[:160]})"


def _is_state(ckpt: dict) -> bool:
    state = ckpt.get("state_dict")
    return isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())


def non_finite_weights(state: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of `state` holding NaN or inf."""
    return [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex): what a checkpoint *is*, whatever its name or date."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_world_model(path: str | Path, device: torch.device | str = "cpu") -> DriveWorldModel:
    """Build a `DriveWorldModel` from its saved config and load its weights (strict), in eval mode.

    Raises:
        FileNotFoundError: no such file. IsADirectoryError: a folder.
        ValueError: corrupt or unsafe file, a config the model refuses, weights that do not match
            the saved config, or non-finite weights (each names the checkpoint and the keys).
    """
    ckpt = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(dict(ckpt["hyper_parameters"]["config"]))
        model = DriveWorldModel(config)
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"checkpoint {path} has an unusable model config: {type(err).__name__}: {err}") from err
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
    bad = non_finite_weights(state)
    if bad:
        raise ValueError(
            f"checkpoint {path} has NaN or infinite weights in {len(bad)} tensors ({', '.join(bad[:3])}"
            f"{', …' if len(bad) > 3 else ''}): a diverged or damaged training run; use an earlier checkpoint"
        )
    model.load_state_dict(state)
    return model.to(device).eval()
