"""Traffic-light cycles: every junction group cycles through its phases (green, yellow, all-red),
with a seeded offset per group; heads of the same phase (same axis) share their state."""

from __future__ import annotations

import torch
from torch import Tensor

RED, YELLOW, GREEN, OFF = 0, 1, 2, 3


def light_states(time: Tensor, md, green: float, yellow: float, all_red: float) -> Tensor:
    """States of all heads.

    Args:
        time: `[W]` simulation time [s].
        md: `MapData` (head_phase/head_group/group_phases/group_offset).
        green, yellow, all_red: phase durations [s].

    Returns:
        `[W, H]` int64 (0 red, 1 yellow, 2 green).
    """
    if md.num_heads == 0:
        return torch.zeros((time.shape[0], 0), dtype=torch.int64, device=time.device)
    period = green + yellow + all_red
    g = md.head_group  # [H]
    cycle = md.group_phases[g].float() * period  # [H]
    tl = torch.remainder(time[:, None] + md.group_offset[g][None, :], cycle[None, :])  # [W, H]
    active = (tl / period).floor().long()
    within = tl - active.float() * period
    mine = active == md.head_phase[None, :]
    state = torch.where(within < green, GREEN, torch.where(within < green + yellow, YELLOW, RED))
    return torch.where(mine, state, torch.full_like(state, RED))
