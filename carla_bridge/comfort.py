"""Bench2Drive's driving smoothness of one route (`tools/efficiency_smoothness_benchmark.py`).

Bench2Drive's agents log, every simulation step, the ego's acceleration, angular velocity and
forward/right vectors (`AutonomousAgent.get_metric_info`). The route is cut into segments of
`segment_steps` samples (a route no longer than one segment is one segment; a shorter last segment
is dropped); a segment is comfortable when, after Savitzky–Golay smoothing (`window_size`,
`poly_order`), the longitudinal and lateral acceleration, the jerk of the acceleration magnitude, the
longitudinal jerk (derivatives with step `time_interval`), the "yaw acceleration" and the yaw rate
lie strictly within the bounds. The route's smoothness is its share of comfortable segments.

Reproduced as the reference computes it, including its quirks: the derivative step is 0.1 s while
samples come every 0.05 s; the yaw rate is CARLA's angular velocity in deg/s compared with bounds
written in rad/s; the "yaw acceleration" is the smoothed yaw rate (no derivative).

Our trace is (x, y, yaw, speed) per step: the acceleration is the finite difference of the velocity
vector, the angular velocity the yaw difference over the step (the first sample repeats the second's),
both in CARLA's left-handed convention (y and yaw mirrored), which the symmetric bounds do not see.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import savgol_filter

from carla_bridge.rules import ComfortRule


def metric_info(trace: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Bench2Drive's per-step metric info from an ego trace.

    Args:
        trace: `[T, 4]` (x, y, yaw, speed) per simulation step (world frame, rear axle, [m], [rad], [m/s]).
        dt: the simulation step [s].

    Returns:
        acceleration `[T, 2]`, angular_velocity_z `[T]` [deg/s], forward `[T, 2]`, right `[T, 2]` (CARLA frame).
    """
    trace = np.asarray(trace, dtype=np.float64)
    if trace.ndim != 2 or trace.shape[1] != 4 or not np.isfinite(trace).all():
        raise ValueError(f"trace must be a finite [T, 4] array, got shape {list(trace.shape)}")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt}")
    yaw_c = -trace[:, 2]  # CARLA: y mirrored, yaw clockwise
    vel = trace[:, 3:4] * np.stack([np.cos(yaw_c), np.sin(yaw_c)], -1)
    acc = np.zeros_like(vel)
    rate = np.zeros(len(trace))
    if len(trace) > 1:
        acc[1:] = np.diff(vel, axis=0) / dt
        rate[1:] = np.degrees(np.remainder(np.diff(yaw_c) + math.pi, 2 * math.pi) - math.pi) / dt
        acc[0], rate[0] = acc[1], rate[1]
    forward = np.stack([np.cos(yaw_c), np.sin(yaw_c)], -1)
    right = np.stack([-np.sin(yaw_c), np.cos(yaw_c)], -1)  # +90° clockwise in the left-handed frame
    return {"acceleration": acc, "angular_velocity_z": rate, "forward": forward, "right": right}


def _phase_unwrap(headings: np.ndarray) -> np.ndarray:
    adj = np.zeros_like(headings)
    adj[1:] = np.cumsum(np.round(np.diff(headings) / (2.0 * np.pi)))
    return headings - 2.0 * np.pi * adj


def _within(x: np.ndarray, lo: float, hi: float) -> bool:
    return bool(np.all((x > lo) & (x < hi)))


def segment_comfortable(
    acc: np.ndarray, rate_z: np.ndarray, forward: np.ndarray, right: np.ndarray, rule: ComfortRule
) -> bool:
    """Whether one segment (arrays as `metric_info`, `[n]` samples) is within every bound (`compute_comfort_metric`)."""
    window = min(rule.window_size, len(acc))
    if not rule.poly_order < window:
        raise ValueError(f"{rule.poly_order} < {window} does not hold: the segment is too short")

    def smooth(x: np.ndarray, deriv: int = 0) -> np.ndarray:
        return savgol_filter(x, window_length=window, polyorder=rule.poly_order, deriv=deriv, delta=rule.time_interval)

    yaw_rate = _phase_unwrap(rate_z)
    lon = smooth(np.einsum("ij,ij->i", acc, forward))
    lat = smooth(np.einsum("ij,ij->i", acc, right))
    mag = smooth(np.hypot(acc[:, 0], acc[:, 1]))
    yaw_acc = smooth(yaw_rate)
    yaw_rate = smooth(yaw_rate)
    return (
        _within(lon, rule.min_lon_accel, rule.max_lon_accel)
        and _within(lat, -rule.max_abs_lat_accel, rule.max_abs_lat_accel)
        and _within(smooth(mag, 1), -rule.max_abs_mag_jerk, rule.max_abs_mag_jerk)
        and _within(smooth(lon, 1), -rule.max_abs_lon_jerk, rule.max_abs_lon_jerk)
        and _within(yaw_acc, -rule.max_abs_yaw_accel, rule.max_abs_yaw_accel)
        and _within(yaw_rate, -rule.max_abs_yaw_rate, rule.max_abs_yaw_rate)
    )


def route_comfort(trace: np.ndarray, dt: float, rule: ComfortRule) -> float | None:
    """The route's smoothness in [0, 1] (`seg_compute_comfort_metric`); None for fewer samples than
    the filter needs (poly_order + 1)."""
    info = metric_info(trace, dt)
    n = len(info["angular_velocity_z"])
    if n <= rule.poly_order:
        return None
    fields = (info["acceleration"], info["angular_velocity_z"], info["forward"], info["right"])
    if n <= rule.segment_steps:
        return 1.0 if segment_comfortable(*fields, rule) else 0.0
    m = rule.segment_steps
    ok = [segment_comfortable(*(f[i : i + m] for f in fields), rule) for i in range(0, n - m + 1, m)]
    return ok.count(True) / len(ok)
