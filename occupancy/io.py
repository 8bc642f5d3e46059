"""Occ3D `labels.npz` reading and writing.

A label file holds three uint8 arrays of the grid's shape `[X, Y, Z]` (200 × 200 × 16 for Occ3D):
`semantics` (class ids 0..17, 17 = free), `mask_lidar` and `mask_camera` (0/1: the voxel was
observed by a lidar / camera ray). Files live at `<root>/gts/<scene_name>/<sample_token>/labels.npz`
and are written atomically (temporary file in the same directory, then `os.replace`), so an
interrupted writer never leaves a truncated file under the final name.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from occupancy.atomic import atomic_path
from occupancy.classes import NUM_CLASSES
from occupancy.grid import GridSpec

__all__ = ["LABEL_KEYS", "labels_path", "read_labels", "write_labels"]

LABEL_KEYS: tuple[str, ...] = ("semantics", "mask_lidar", "mask_camera")
OCC3D_GRID = GridSpec.occ3d()


def labels_path(root: str | os.PathLike, scene_name: str, sample_token: str) -> Path:
    """`<root>/gts/<scene_name>/<sample_token>/labels.npz` (the Occ3D layout)."""
    for field, value in (("scene_name", scene_name), ("sample_token", sample_token)):
        if not isinstance(value, str) or not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"{field} must be a non-empty name without path separators, got {value!r}")
    return Path(root) / "gts" / scene_name / sample_token / "labels.npz"


def _as_numpy(x: np.ndarray | torch.Tensor, field: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise ValueError(f"{field} must be a numpy array or torch tensor, got {type(x).__name__}")


def _check_arrays(arrays: dict[str, np.ndarray], grid: GridSpec | None, where: str) -> None:
    """Validate dtypes, shapes and value ranges; `ValueError` naming `where` and the field."""
    shape = grid.shape if grid is not None else arrays["semantics"].shape
    for key in LABEL_KEYS:
        a = arrays[key]
        if a.dtype != np.uint8:
            raise ValueError(f"{where}: field {key!r} must be uint8, got {a.dtype}")
        if a.shape != tuple(shape):
            raise ValueError(f"{where}: field {key!r} has shape {a.shape}, expected {tuple(shape)}")
        if a.ndim != 3:
            raise ValueError(f"{where}: field {key!r} must be 3-D [X, Y, Z], got shape {a.shape}")
    sem = arrays["semantics"]
    if sem.size and int(sem.max()) >= NUM_CLASSES:
        raise ValueError(f"{where}: field 'semantics' has class id {int(sem.max())} outside 0..{NUM_CLASSES - 1}")
    for key in ("mask_lidar", "mask_camera"):
        m = arrays[key]
        if m.size and int(m.max()) > 1:
            raise ValueError(f"{where}: field {key!r} must hold only 0/1, found {int(m.max())}")


def write_labels(
    path: str | os.PathLike,
    semantics: np.ndarray | torch.Tensor,
    mask_lidar: np.ndarray | torch.Tensor,
    mask_camera: np.ndarray | torch.Tensor,
    grid: GridSpec | None = OCC3D_GRID,
) -> Path:
    """Write an Occ3D `labels.npz` atomically (parent directories are created).

    Args:
        path: destination file (conventionally from `labels_path`).
        semantics: `[X, Y, Z]` integer class ids in 0..17.
        mask_lidar: `[X, Y, Z]` bool or 0/1 integers.
        mask_camera: `[X, Y, Z]` bool or 0/1 integers.
        grid: the shape `[X, Y, Z]` must match `grid.shape` (default Occ3D 200 × 200 × 16);
            None accepts any 3-D shape shared by the three arrays.

    Returns:
        The path written.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for key, value in zip(LABEL_KEYS, (semantics, mask_lidar, mask_camera)):
        a = _as_numpy(value, key)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        elif np.issubdtype(a.dtype, np.integer):
            if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
                raise ValueError(f"write_labels: field {key!r} has values outside 0..255")
            a = a.astype(np.uint8, copy=False)
        else:
            raise ValueError(f"write_labels: field {key!r} must be an integer or bool array, got {a.dtype}")
        arrays[key] = np.ascontiguousarray(a)
    _check_arrays(arrays, grid, f"write_labels({path})")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def read_labels(path: str | os.PathLike, grid: GridSpec | None = OCC3D_GRID) -> dict[str, np.ndarray]:
    """Read and validate an Occ3D `labels.npz`.

    Args:
        path: the file.
        grid: expected grid (shape check); None accepts any 3-D shape shared by the arrays.

    Returns:
        `{"semantics", "mask_lidar", "mask_camera"}` → `[X, Y, Z]` uint8 numpy arrays. Extra keys in
        the file are ignored.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a readable npz, a key missing, or a wrong dtype / shape / value range (the
            message names the file and the field).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Occ3D labels file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in LABEL_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: missing field(s) {missing}; found {sorted(z.files)}")
            arrays = {k: z[k] for k in LABEL_KEYS}
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from e
    except ValueError as e:
        if str(path) in str(e):
            raise
        raise ValueError(f"{path}: cannot read arrays ({e})") from e
    _check_arrays(arrays, grid, str(path))
    return arrays
