"""The report plots (matplotlib, static PNG, written atomically), shared by every evaluation.

Each function takes plain numbers (no results.json layout), draws one figure and returns its path:
means with 95 % interval bars and one dot per run (`interval_dots`), stacked bars (`stacked_bars`),
grouped bars (`grouped_bars`), curves over the horizon (`horizon_curves`), predicted vs true scatter
(`scatter_panels`), values per scene as a strip (`strips`), ROC curves (`roc_curves`) and reliability
diagrams (`reliability_diagrams`). Figures are sized to sit two abreast in a 1240-pixel report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from drivewm.evaluation.common.stats import mean_ci
from occupancy.render import save_figure

DPI = 100
PANEL = (4.0, 3.0)
"""Width, height of one panel [inch] (at `DPI`: 400 × 300 pixels)."""


def _figure(panels: int, title: str, height: float = PANEL[1]) -> tuple[Figure, list]:
    fig = Figure(figsize=(PANEL[0] * panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    if title:
        fig.suptitle(title, fontsize=10)
    for ax in axes:
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3, linewidth=0.5)
    return fig, axes


def _grid(panels: int, title: str, height: float, cols: int = 4) -> tuple[Figure, list]:
    """A figure of `panels` small panels, at most `cols` a row, each 3 inches wide and `height` high."""
    cols = min(cols, panels)
    rows = math.ceil(panels / cols)
    fig = Figure(figsize=(3.0 * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, fontsize=10)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(panels)]
    for ax in axes:
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3, linewidth=0.5)
    return fig, axes


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def interval_dots(
    path: Path,
    panels: Sequence[tuple[str, str, Mapping[str, Sequence[float]]]],
    title: str = "",
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Per panel `(title, y label, {group: values})`: each group's mean with its 95 % Student-t
    interval as an error bar, and every value as a jittered dot beside it (`ylim`: the y range)."""
    fig, axes = _figure(len(panels), title)
    rng = np.random.default_rng(0)
    for ax, (name, ylabel, groups) in zip(axes, panels):
        labels = list(groups)
        for i, (g, color) in enumerate(zip(labels, _colors(len(labels)))):
            v = np.array([x for x in groups[g] if x is not None and math.isfinite(x)], dtype=float)
            if len(v):
                ax.scatter(i + 0.18 + rng.uniform(-0.06, 0.06, len(v)), v, s=12, color=color, alpha=0.6, zorder=2)
            ci = mean_ci(v)
            if math.isfinite(ci["mean"]):
                err = None if not math.isfinite(ci["half"]) else [[ci["half"]], [ci["half"]]]
                ax.errorbar([i - 0.1], [ci["mean"]], yerr=err, fmt="o", color=color, capsize=4, zorder=3)
        ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=20 if len(labels) > 3 else 0)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        if ylim is not None:
            ax.set_ylim(*ylim)
    return save_figure(fig, path, dpi=DPI)


def stacked_bars(path: Path, bars: Mapping[str, Mapping[str, float]], ylabel: str, title: str = "") -> Path:
    """One stacked bar per key of `bars` (`{bar: {part: value}}`); parts that are zero everywhere are left
    out of the stack and named in the legend as such."""
    fig, (ax,) = _figure(1, title, height=3.2)
    names = list(bars)
    parts = sorted({p for b in bars.values() for p in b})
    shown = [p for p in parts if any(bars[b].get(p, 0.0) > 0 for b in names)]
    bottom = np.zeros(len(names))
    for part, color in zip(shown, _colors(len(shown))):
        v = np.array([bars[b].get(part, 0.0) for b in names])
        ax.bar(range(len(names)), v, bottom=bottom, color=color, label=part, width=0.6)
        bottom += v
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if shown:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "no infraction", ha="center", va="center", transform=ax.transAxes, fontsize=9)
    fig.set_size_inches(PANEL[0] * 1.6, 3.2)
    return save_figure(fig, path, dpi=DPI)


def grouped_bars(
    path: Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    ylabel: str,
    title: str = "",
    labels: Mapping[str, Sequence[str]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> Path:
    """Bars of each series side by side per category (None: no bar); `labels` prints a text over each bar
    (e.g. "3/5"); `ylim`: the y range."""
    width = max(PANEL[0], 0.55 * len(categories) * max(1, len(series)) + 1.5)
    fig, (ax,) = _figure(1, title, height=3.4)
    fig.set_size_inches(min(width, 12.0), 3.4)
    k = max(1, len(series))
    w = 0.8 / k
    x = np.arange(len(categories))
    for j, ((name, vals), color) in enumerate(zip(series.items(), _colors(k))):
        v = np.array([np.nan if a is None else a for a in vals], dtype=float)
        pos = x - 0.4 + w * (j + 0.5)
        ax.bar(pos, np.nan_to_num(v), width=w, color=color, label=name)
        for p, val, text in zip(pos, v, (labels or {}).get(name, [""] * len(v))):
            if text and math.isfinite(val):
                ax.text(p, val, text, ha="center", va="bottom", fontsize=6)
    ax.set_xticks(x, categories, fontsize=7, rotation=25, ha="right")
    ax.set_ylabel(ylabel, fontsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return save_figure(fig, path, dpi=DPI)


def horizon_curves(
    path: Path,
    panels: Sequence[tuple[str, str, Sequence[float], Mapping[str, Sequence[float | None]]]],
    title: str = "",
) -> Path:
    """Per panel `(title, y label, x [s], {series: y})`: one line with markers per series over the horizon."""
    fig, axes = _figure(len(panels), title)
    for ax, (name, ylabel, x, series) in zip(axes, panels):
        for (label, y), color in zip(series.items(), _colors(len(series))):
            v = np.array([np.nan if a is None else a for a in y], dtype=float)
            style = "--" if "privileged" in label else "-"
            ax.plot(x, v, style, marker="o", markersize=3, color=color, label=label, linewidth=1.2)
        ax.set_xlabel("horizon [s]", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=6)
    return save_figure(fig, path, dpi=DPI)


def scatter_panels(
    path: Path,
    panels: Sequence[tuple[str, Sequence[np.ndarray], Sequence[np.ndarray]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
) -> Path:
    """Per panel `(title, xs, ys)`: one colour per group (scene) of points; at most 4 panels a row."""
    fig, axes = _grid(len(panels), title, height=2.8)
    for ax, (name, xs, ys) in zip(axes, panels):
        for x, y, color in zip(xs, ys, _colors(len(xs))):
            ax.scatter(x, y, s=8, color=color, alpha=0.7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=7)
        ax.set_ylabel(ylabel, fontsize=7)
    return save_figure(fig, path, dpi=DPI)


def strips(
    path: Path, panels: Sequence[tuple[str, Mapping[str, Sequence[float]]]], xlabel: str, title: str = ""
) -> Path:
    """Per panel `(title, {row: values})`: every value as a dot on its row, the mean and its 95 % interval
    as a bar; undefined values (NaN) are counted in the row label."""
    rows_n = max((len(p[1]) for p in panels), default=1)
    fig, axes = _figure(len(panels), title, height=1.0 + 0.45 * rows_n)
    rng = np.random.default_rng(0)
    for ax, (name, groups) in zip(axes, panels):
        labels = []
        for i, (g, color) in enumerate(zip(groups, _colors(len(groups)))):
            v = np.array([np.nan if x is None else x for x in groups[g]], dtype=float)
            ok = v[np.isfinite(v)]
            ax.scatter(ok, i + rng.uniform(-0.12, 0.12, len(ok)), s=12, color=color, alpha=0.6)
            ci = mean_ci(ok)
            if math.isfinite(ci["mean"]):
                err = None if not math.isfinite(ci["half"]) else [[ci["half"]], [ci["half"]]]
                ax.errorbar([ci["mean"]], [i + 0.3], xerr=err, fmt="D", color="black", markersize=4, capsize=3)
            undefined = len(v) - len(ok)
            labels.append(g + (f" ({undefined} undef.)" if undefined else ""))
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylim(len(labels) - 0.4, -0.6)
        ax.axvline(0.0, color="grey", linewidth=0.6)
        ax.set_xlim(-1.05, 1.05)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(name, fontsize=9)
    return save_figure(fig, path, dpi=DPI)


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates `[M]` over every threshold of `scores` (higher = positive); tied
    scores move both rates at once (a diagonal step), so the area under the curve equals the
    Mann–Whitney AUROC with ties counted ½."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each run of tied scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos]


def roc_curves(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]], title: str = "") -> Path:
    """ROC curves `{name: (scores, labels, auroc)}` in one panel, the AUROC in the legend."""
    fig, (ax,) = _figure(1, title, height=3.4)
    fig.set_size_inches(4.6, 3.4)
    for (name, (scores, labels, auc)), color in zip(curves.items(), _colors(len(curves))):
        fpr, tpr = roc_curve(scores, labels)
        ax.plot(fpr, tpr, color=color, linewidth=1.3, label=f"{name} (AUROC {auc:.2f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    ax.set_xlabel("false-positive rate (safe plans rejected)", fontsize=8)
    ax.set_ylabel("true-positive rate (unsafe plans rejected)", fontsize=8)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, path, dpi=DPI)


def reliability_bins(prob: np.ndarray, label: np.ndarray, bins: int = 10) -> dict[str, np.ndarray]:
    """Equal-width bins over [0, 1] (a probability of 1 in the last bin): `count`, mean predicted
    probability `confidence` and observed frequency `frequency` per bin (NaN when empty), and `ece` =
    Σ_b n_b / n · |confidence − frequency| (Naeini et al. 2015)."""
    p = np.asarray(prob, dtype=np.float64).ravel()
    y = np.asarray(label).ravel().astype(np.float64)
    if p.shape != y.shape:
        raise ValueError(f"prob and label must have the same length, got {p.shape[0]} and {y.shape[0]}")
    if not np.isfinite(p).all() or ((p < 0) | (p > 1)).any():
        raise ValueError("prob must be finite probabilities in [0, 1]")
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(idx, weights=p, minlength=bins) / count
        freq = np.bincount(idx, weights=y, minlength=bins) / count
    used = count > 0
    ece = float((count[used] / count.sum() * np.abs(conf[used] - freq[used])).sum()) if used.any() else math.nan
    return {"count": count, "confidence": conf, "frequency": freq, "ece": np.float64(ece)}


def reliability_diagrams(
    path: Path, panels: Mapping[str, tuple[np.ndarray, np.ndarray]], bins: int = 10, title: str = ""
) -> Path:
    """One reliability diagram per `{name: (predicted probability, observed 0/1)}`: observed frequency
    against mean predicted probability per bin (dot area ∝ count), the diagonal, and the ECE."""
    fig, axes = _grid(len(panels), title, height=3.0)
    for ax, (name, (prob, label)) in zip(axes, panels.items()):
        r = reliability_bins(prob, label, bins)
        used = r["count"] > 0
        ax.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
        ax.plot(r["confidence"][used], r["frequency"][used], "-", color="tab:blue", linewidth=1.0)
        size = 10 + 120 * r["count"][used] / max(r["count"].max(), 1)
        ax.scatter(r["confidence"][used], r["frequency"][used], s=size, color="tab:blue", zorder=3)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(f"{name}\nECE {float(r['ece']):.3f}, n = {int(r['count'].sum())}", fontsize=8)
        ax.set_xlabel("predicted probability", fontsize=7)
        ax.set_ylabel("observed frequency", fontsize=7)
    return save_figure(fig, path, dpi=DPI)


__all__ = [
    "grouped_bars",
    "horizon_curves",
    "interval_dots",
    "reliability_bins",
    "reliability_diagrams",
    "roc_curve",
    "roc_curves",
    "scatter_panels",
    "stacked_bars",
    "strips",
]
