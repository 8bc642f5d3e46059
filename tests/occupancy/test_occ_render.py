"""BEV rendering: colours at known cells, orientation in figures, PNG output."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from occupancy.builders import voxelize_boxes
from occupancy.classes import OCC3D_COLORS, Occ3DClass
from occupancy.grid import GridSpec
from occupancy.render import bev_figure, bev_image, bev_labels, render_bev

G = GridSpec.occ3d()


def test_bev_labels_take_the_highest_occupied_voxel():
    sem = np.full(G.shape, Occ3DClass.FREE, dtype=np.uint8)
    sem[10, 20, 2] = 11  # road only
    sem[30, 40, 2] = 11
    sem[30, 40, 5] = 4  # car above road
    sem[30, 40, 9] = Occ3DClass.FREE
    sem[50, 60, 15] = 16  # top layer vegetation
    top = bev_labels(torch.from_numpy(sem))
    assert top.shape == (200, 200) and top.dtype == np.uint8
    assert top[10, 20] == 11 and top[30, 40] == 4 and top[50, 60] == 16
    assert (top == Occ3DClass.FREE).sum() == 200 * 200 - 3


def test_bev_image_colours_and_orientation():
    sem = np.full(G.shape, Occ3DClass.FREE, dtype=np.uint8)
    sem[199, 199, 3] = 4  # front-left corner (x max, y max) → top-left pixel
    sem[0, 199, 3] = 7  # rear-left (x min, y max) → bottom-left pixel
    sem[199, 0, 3] = 15  # front-right → top-right pixel
    img = bev_image(sem)
    assert img.shape == (200, 200, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[0, 0], OCC3D_COLORS[4])
    np.testing.assert_array_equal(img[199, 0], OCC3D_COLORS[7])
    np.testing.assert_array_equal(img[0, 199], OCC3D_COLORS[15])
    np.testing.assert_array_equal(img[100, 100], [255, 255, 255])  # free is white
    with pytest.raises(ValueError, match="semantics"):
        bev_image(sem[0])


def _pixel(fig, ax, x, y):
    """RGB of the rendered canvas at ego-frame point (x, y)."""
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    u, v = ax.transData.transform((y, x))
    return buf[buf.shape[0] - 1 - int(np.rint(v)), int(np.rint(u))]


def test_figure_places_ego_frame_points_correctly(tmp_path):
    # a bus block forward-left of the ego: x in [20, 30], y in [10, 20]
    sem = voxelize_boxes(G, torch.tensor([[25.0, 15.0, 1.0, 0.0, 10.0, 10.0, 2.0]]), torch.tensor([3]))
    fig, ax = bev_figure(sem, G, legend=False)
    np.testing.assert_array_equal(_pixel(fig, ax, 25.0, 15.0), OCC3D_COLORS[3])
    np.testing.assert_array_equal(_pixel(fig, ax, 25.0, -15.0), [255, 255, 255])  # mirrored: free
    np.testing.assert_array_equal(_pixel(fig, ax, -25.0, 15.0), [255, 255, 255])

    rng = np.random.default_rng(0)
    t = np.linspace(0.5, 3.0, 6)
    plans = np.stack([np.stack([5 * t, k * 0.3 * t, np.full(6, 0.1 * k)], -1) for k in range(-3, 4)])
    fig = render_bev(
        sem,
        G,
        boxes=np.array([[25.0, 15.0, 0.0, 10.0, 10.0], [10.0, -3.0, 0.5, 4.5, 1.9]]),
        trajectories=rng.normal(size=(2, 6, 2)).cumsum(1) + np.array([10.0, -3.0]),
        plans=plans,
        scores=np.linspace(0, 1, 7),
        best=3,
        title="test",
        path=tmp_path / "out" / "bev.png",
    )
    png = iio.imread(tmp_path / "out" / "bev.png")
    assert png.ndim == 3 and png.shape[0] > 200 and png.shape[1] > 200
    assert len(fig.axes) == 2  # the BEV and the score colour bar
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bev.png"]
