"""Where a reported number comes from: the commit, the checkpoint and how it was trained — the line a
summary prints above its headline figures.

A checkpoint is described from its own contents (read with `weights_only=True`): the optimizer steps
and epochs it was trained for, its learning rate, and the dataset it was trained on (the datamodule's
saved `dataroot`/`version`); the dataset is described from drivewm's files beside it
(`<dataroot>/drivewm/<version>/generator.json` and `splits.json`: towns, scenes, seconds, held-out towns).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def _dataset_text(dataroot: str | None, version: str | None) -> str:
    if not version:
        return "an unnamed dataset"
    text = version
    if not dataroot:
        return text
    ext = Path(dataroot) / "drivewm" / version
    try:
        gen = json.loads((ext / "generator.json").read_text()).get("config") or {}
        splits = json.loads((ext / "splits.json").read_text())
    except (OSError, json.JSONDecodeError):
        return text
    train = len(splits.get("train") or [])
    seconds = gen.get("scene_seconds")
    val_towns = set(gen.get("val_towns") or [])
    towns = [t for t in gen.get("towns") or [] if t not in val_towns]
    text += f": {train} training scene{'s' if train != 1 else ''}"
    if seconds:
        text += f" × {float(seconds):g} s"
    if towns:
        text += f" from {', '.join(towns)}"
    if val_towns:
        text += f" (held out for validation: {', '.join(sorted(val_towns))})"
    return text


def describe_checkpoint(path: str | os.PathLike) -> str:
    """`last.ckpt: 500 steps (13 epochs), lr 0.002, on v1.0-sim-demo: 6 training scenes × 16 s from …`;
    says so when the file is missing or not a drivewm checkpoint."""
    from drivewm.model.checkpoint import read_checkpoint

    path = Path(path)
    try:
        ckpt: dict[str, Any] = read_checkpoint(path)
    except FileNotFoundError:
        return f"{path} (not found)"
    except ValueError as err:
        return f"{path} (unreadable: {err})"
    hp = ckpt.get("hyper_parameters") or {}
    data = ckpt.get("datamodule_hyper_parameters") or {}
    steps, epochs = ckpt.get("global_step"), ckpt.get("epoch")
    parts = [f"{path}:"]
    if steps is not None:
        parts.append(f"{steps} steps" + (f" ({int(epochs) + 1} epochs)" if epochs is not None else "") + ",")
    if hp.get("lr") is not None:
        parts.append(f"lr {hp['lr']:g},")
    parts.append("on " + _dataset_text(data.get("dataroot"), data.get("version")))
    return " ".join(parts)


def provenance_text(commit: str | None, checkpoints: dict[str, str | None]) -> str:
    """`commit X; checkpoint of drivewm: <describe_checkpoint>` (checkpoints by the rows that use them)."""
    by_path: dict[str, list[str]] = {}
    for user, ckpt in checkpoints.items():
        if ckpt:
            by_path.setdefault(str(ckpt), []).append(user)
    parts = [f"commit {commit or 'unknown'}"]
    for ckpt, users in by_path.items():
        parts.append(f"checkpoint of {', '.join(users)}: {describe_checkpoint(ckpt)}")
    if not by_path:
        parts.append("no learned checkpoint")
    return "; ".join(parts) + "."


__all__ = ["describe_checkpoint", "provenance_text"]
