"""Bench2Drive's smoothness (tools/efficiency_smoothness_benchmark.py `seg_compute_comfort_metric` /
`compute_comfort_metric`) on hand-made traces whose filtered signals are known exactly (a Savitzky–Golay
filter of order 2 reproduces constants and straight lines)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carla_bridge.comfort import metric_info, route_comfort
from carla_bridge.rules import load_rules

RULE = load_rules("bench2drive").benchmark.comfort
DT = 0.05


def trace(accels, v0=10.0, yaw_rate=0.0):
    """(x, y, yaw, speed) per step for per-step accelerations `accels` [m/s²] and a constant yaw rate [rad/s]."""
    rows, x, y, yaw, v = [], 0.0, 0.0, 0.0, v0
    for a in accels:
        v += a * DT
        yaw += yaw_rate * DT
        x += v * math.cos(yaw) * DT
        y += v * math.sin(yaw) * DT
        rows.append([x, y, yaw, v])
    return np.array(rows)


def test_metric_info_in_carla_units():
    """get_metric_info: acceleration [m/s²] and angular velocity [deg/s] in CARLA's (mirrored) frame."""
    info = metric_info(trace([-2.0] * 10, yaw_rate=0.1), DT)
    assert info["angular_velocity_z"] == pytest.approx(np.full(10, -math.degrees(0.1)))
    lon = np.einsum("ij,ij->i", info["acceleration"], info["forward"])
    assert lon == pytest.approx(np.full(10, -2.0), abs=0.05)
    with pytest.raises(ValueError, match="trace"):
        metric_info(np.zeros((3, 3)), DT)


def test_bounds_segments_and_the_reference_quirks():
    """Lon. acceleration in (−4.05, 2.40); yaw rate compared in deg/s with 0.95 (rad/s in the reference's
    comment); jerks derived with a 0.1 s step although samples come every 0.05 s; 20-sample segments,
    a shorter last one dropped; ≤ 20 samples judged as one."""
    assert route_comfort(trace([0.0] * 100), DT, RULE) == 1.0
    assert route_comfort(trace([-3.0] * 60, v0=15.0), DT, RULE) == 1.0
    assert route_comfort(trace([-4.2] * 60, v0=15.0), DT, RULE) == 0.0
    assert route_comfort(trace([0.0] * 40, v0=5.0, yaw_rate=0.01), DT, RULE) == 1.0  # 0.57 deg/s
    assert route_comfort(trace([0.0] * 40, v0=5.0, yaw_rate=0.02), DT, RULE) == 0.0  # 1.15 deg/s > 0.95
    # a linear braking ramp: the filtered jerk is the ramp slope per 0.1 s (the reference's step)
    slow = [-0.3 * min(k, 12) for k in range(20)]  # 0.3 m/s² per sample → 3.0 "m/s³" < 4.13
    fast = [-0.45 * min(k, 8) for k in range(20)]  # 4.5 > 4.13
    assert route_comfort(trace(slow, v0=15.0), DT, RULE) == 1.0
    assert route_comfort(trace(fast, v0=15.0), DT, RULE) == 0.0
    mixed = trace([0.0] * 20 + [-6.0] * 20 + [0.0] * 5, v0=15.0)  # 45 samples: segments ok, bad, dropped
    assert route_comfort(mixed, DT, RULE) == 0.5
    assert route_comfort(trace([0.0] * 2), DT, RULE) is None
