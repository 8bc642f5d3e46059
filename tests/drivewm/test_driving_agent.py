import dataclasses
import math

import pytest
import torch

from carla_bridge.closed_loop.runner import RunLimits, run_route
from drivewm.driving_agent import DrivingAgent, DrivingAgentConfig
from planner.world_models import EmptyWorldModel
from tests.carla_bridge.closed_loop_testkit import FAST_BACKEND, devtest_route


class _Recorder(DrivingAgent):
    """Keeps what the runner asked and got, for the test."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.asked, self.controls, self.replan_times = [], [], []

    def needs_cameras(self, timestamp):
        r = super().needs_cameras(timestamp)
        self.asked.append((round(timestamp, 3), r))
        return r

    def _replan(self, obs, timestamp, privileged):
        self.replan_times.append(round(timestamp, 3))
        super()._replan(obs, timestamp, privileged)

    def run_step(self, obs, timestamp, privileged):
        c = super().run_step(obs, timestamp, privileged)
        self.controls.append(c)
        return c


def test_driving_agent_replans_at_its_rate_and_tracks_between():
    agent = _Recorder(EmptyWorldModel(), name="empty", needs_images=True)
    limits = RunLimits(max_route_length=20.0, replan_hz=4.0, max_sim_seconds=2.5)
    rec = run_route(FAST_BACKEND, agent, devtest_route("0"), 0, limits)
    assert rec["failure"] is None, rec["failure"]
    assert rec["route_completion"] > 5.0  # it drove
    st = rec["planner"]
    assert st["replan_hz"] == 4.0 and st["replans"] == len(agent.replan_times)
    # replans every 0.25 s of simulated time, starting at 0
    assert agent.replan_times[:4] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert st["replans"] == pytest.approx(rec["sim_seconds"] * 4.0, abs=1.5)
    # cameras are requested exactly for the steps that replan
    wanted = [t for t, r in agent.asked if r]
    assert wanted[: len(agent.replan_times) - 1] == agent.replan_times[1:]
    assert len(wanted) - (len(agent.replan_times) - 1) in (0, 1)  # + the step after the end, never executed
    assert all(math.isfinite(v) for c in agent.controls for v in (c.throttle, c.steer, c.brake))
    assert st["latency_ms"]["p50"] > 0 and st["control_guards"] == 0
    view = agent.debug_view()
    assert view is None  # destroyed after the route
    with pytest.raises(ValueError, match="replan_hz"):
        DrivingAgentConfig(replan_hz=1.0)


class _NanModel(EmptyWorldModel):
    """An empty road whose obstacle forecast is NaN (a broken network)."""

    def rollout(self, scene, plans):
        pred = super().rollout(scene, plans)
        return dataclasses.replace(pred, obstacle_prob=torch.full_like(pred.obstacle_prob, float("nan")))


def test_non_finite_predictions_fall_back_and_never_reach_the_controls():
    agent = _Recorder(_NanModel(name="nan"), name="nan", needs_images=False)
    rec = run_route(FAST_BACKEND, agent, devtest_route("0"), 0, RunLimits(max_route_length=20.0, max_sim_seconds=2.5))
    assert rec["failure"] is None
    st = rec["planner"]
    assert st["rejections"] == st["replans"] >= 4
    assert st["rejection_reasons"] == {"NON_FINITE_PREDICTION": st["replans"]}
    assert st["fallbacks"] == st["replans"] and "non-finite" in st["last_messages"][-1]
    assert all(c.throttle == 0.0 for c in agent.controls)  # the comfortable stop from standstill
    assert rec["route_completion"] <= 5.0  # the box centre starts 1.38 m along: waypoint 1 of 20 is passed
    assert rec["stopped_by"] == "max_sim_seconds"  # the 2.5 s simulated-time cap ended the run


def test_cameras_are_resized_to_the_models_input_like_the_dataset():
    import numpy as np
    from PIL import Image

    from planner import Observation

    class _Sized(EmptyWorldModel):
        class config:  # mimics DriveWorldModel.config
            image_size = [12, 20]

    agent = DrivingAgent(_Sized(), name="sized")
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, (6, 18, 32, 3), dtype=np.uint8)  # the 6-camera rig
    k = torch.tensor([[[16.0, 0.0, 16.0], [0.0, 16.0, 9.0], [0.0, 0.0, 1.0]]]).repeat(6, 1, 1)
    obs = Observation(
        images=torch.from_numpy(raw).permute(0, 3, 1, 2)[None],
        intrinsics=k[None],
        cam_to_ego=torch.eye(4).repeat(1, 6, 1, 1),
        ego_history=torch.zeros(1, 5, 3),
        speed=torch.zeros(1),
        ego_pose=torch.zeros(1, 3),
        route=torch.zeros(1, 4, 2),
        route_valid=torch.ones(1, 4, dtype=torch.bool),
        timestamp=torch.zeros(1),
    ).validate()
    out = agent._fit_images(obs)
    assert out.images.shape == (1, 6, 3, 12, 20)
    ref = np.asarray(Image.fromarray(raw[1]).resize((20, 12), Image.BILINEAR))
    assert torch.equal(out.images[0, 1].permute(1, 2, 0), torch.from_numpy(ref.copy()))
    want = torch.tensor([[10.0, 0.0, 10.0], [0.0, 32 / 3, 6.0], [0.0, 0.0, 1.0]])
    assert torch.allclose(out.intrinsics[0, 0], want)
    assert agent._fit_images(out) is out  # already the right size

    class _Det:  # `cv` on a learned detector: the detector's input size counts
        image_size = (9, 16)

        def __call__(self, obs):
            raise AssertionError("not called here")

    from planner.world_models import ConstantVelocityWorldModel

    cv = DrivingAgent(ConstantVelocityWorldModel("cv", detector=_Det()), name="cv")
    assert cv._fit_images(obs).images.shape == (1, 6, 3, 9, 16)
