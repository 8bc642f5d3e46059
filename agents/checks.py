"""Input validation shared by every package: one tensor check that names the field.

DESIGN.md §9: invalid input (wrong type, shape or dtype, NaN/inf) gives a `ValueError` naming the
field. `agents/` is the lowest package, so the check lives here and everything above imports it.

    check_tensor("Observation.speed", speed, (b,), torch.float32)        # exactly [B]
    check_tensor("plans", plans, (None, None, None, 3))                  # [*, *, *, 3]
    check_tensor("traj", traj, (..., None, 3), floating=True)             # [..., T, 3], any lead
    check_tensor("features.dyn", dyn, (b, ...))                            # batch first, any rest
"""

from __future__ import annotations

from types import EllipsisType

import torch
from torch import Tensor

Shape = tuple[int | EllipsisType | None, ...]


def _matches(shape: torch.Size, want: Shape) -> bool:
    """True if `shape` fits `want` (None = any size; one `...` = any number of dims there)."""
    if Ellipsis in want:
        cut = want.index(Ellipsis)
        head, tail = want[:cut], want[cut + 1 :]
        if len(shape) < len(head) + len(tail):
            return False
        return _matches(shape[: len(head)], head) and _matches(shape[len(shape) - len(tail) :], tail)
    return len(shape) == len(want) and all(w is None or w == d for w, d in zip(want, shape))


def _describe(want: Shape) -> str:
    return "[" + ", ".join("..." if w is Ellipsis else "*" if w is None else str(w) for w in want) + "]"


def check_tensor(
    name: str,
    t: object,
    shape: Shape | None = None,
    dtype: torch.dtype | None = None,
    *,
    finite: bool = True,
    floating: bool = False,
) -> Tensor:
    """Return `t` if it is a tensor of `shape` and `dtype`; else raise `ValueError` naming `name`.

    Args:
        name: the field, as the user knows it (e.g. "Observation.speed").
        t: the value to check.
        shape: expected shape; None entries match any size, one `...` any number of dims.
        dtype: required dtype (None = any).
        finite: floating tensors must hold no NaN or inf.
        floating: the dtype must be a floating-point one.
    """
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if shape is not None and not _matches(t.shape, shape):
        raise ValueError(f"{name} has shape {list(t.shape)}, expected {_describe(shape)}")
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if floating and not t.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if finite and t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t


__all__ = ["check_tensor"]
