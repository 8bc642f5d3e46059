"""Issue 17, Python API: a NaN or an exception from the model always ends in a recorded rejection and
a safe stop, never in an exception out of the planner; the controller never accelerates on a stop
plan; malformed inputs are a `ValueError` naming the field; NaN weights are refused at load, naming
the checkpoint.

The world model is the real tiny `DriveWorldModel`; its failures are real ones (NaN weights, images
of the wrong size), except the rollout exception, injected by a wrapper that stands for an
out-of-memory error on the device.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from carla_bridge.closed_loop.runner import RunLimits, run_route
from drivewm.driving_agent import DrivingAgent
from drivewm.model.checkpoint import load_world_model
from drivewm.model.config import ModelConfig
from drivewm.model.world_model import DriveWorldModel
from planner import Observation
from planner.controller import PlanController, PlanFollower, track_plans
from planner.plan import plan
from planner.proposals import generate_proposals
from planner.selection import Decision, RejectReason
from tests.carla_bridge.closed_loop_testkit import FAST_BACKEND, devtest_route
from tests.drivewm.bad_input_files import write_checkpoint
from tests.drivewm.synthetic_batches import TINY, simple_rig
from tests.planner.planner_scenes import observation


def _model(nan_in: str | None = None) -> DriveWorldModel:
    torch.manual_seed(0)
    model = DriveWorldModel(ModelConfig(**TINY)).eval()
    if nan_in is not None:
        with torch.no_grad():
            next(p for n, p in model.named_parameters() if n.startswith(nan_in)).fill_(float("nan"))
    return model


def _obs(model: DriveWorldModel, speed: float = 8.0, cameras: int = 6) -> Observation:
    """The planner scenes' straight road, seen by the first `cameras` (≤ 6) of the tiny model's rig."""
    base = observation(speed)
    h, w = model.config.image_size
    k, m = simple_rig((h, w))
    return dataclasses.replace(
        base,
        images=torch.randint(0, 255, (1, cameras, 3, h, w), dtype=torch.uint8),
        intrinsics=k[None, :cameras].contiguous(),
        cam_to_ego=m[None, :cameras].contiguous(),
    )


def _assert_stop(result, reason: RejectReason, text: str) -> None:
    sel = result.selection
    assert int(sel.decision[0]) == Decision.COMFORTABLE_STOP
    assert int(sel.reject_reason[0]) == reason
    assert int(sel.index[0]) == 0  # proposal 0: the comfortable stop
    assert torch.equal(sel.plan[0], result.proposals.plans[0, 0])
    assert text in sel.messages[0]


def test_nan_from_encode_is_a_rejection_and_a_stop():
    model = _model(nan_in="backbone")
    result = plan(model, _obs(model))
    _assert_stop(result, RejectReason.MODEL_ERROR, "encode")
    assert "NaN" in result.model_error
    assert result.scene.latent is None  # the next step does not fuse a broken latent


def test_an_exception_from_encode_is_a_rejection_and_a_stop():
    model = _model()
    obs = _obs(model)
    wrong = dataclasses.replace(obs, images=torch.zeros(1, 6, 3, 16, 16, dtype=torch.uint8))  # not the model's size
    result = plan(model, wrong)
    _assert_stop(result, RejectReason.MODEL_ERROR, "encode: ValueError")
    follow = plan(model, obs, prev=result)  # the next replan works again
    assert follow.model_error is None and int(follow.selection.reject_reason[0]) != RejectReason.MODEL_ERROR


def test_nan_from_rollout_is_a_rejection_and_a_stop():
    model = _model(nan_in="inter_out")  # the plan pathway: encode is finite, every rollout is NaN
    result = plan(model, _obs(model))
    assert result.model_error is None
    _assert_stop(result, RejectReason.NON_FINITE_PREDICTION, "non-finite")


class _OutOfMemoryInRollout:
    """The real model whose rollout fails as a device out of memory would."""

    def __init__(self, model: DriveWorldModel) -> None:
        self.model, self.name, self.config = model, "drivewm", model.config

    def encode(self, obs, prev=None):
        return self.model.encode(obs, prev)

    def rollout(self, scene, plans):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")


def test_an_exception_from_rollout_is_a_rejection_and_a_stop():
    model = _model()
    result = plan(_OutOfMemoryInRollout(model), _obs(model))
    _assert_stop(result, RejectReason.MODEL_ERROR, "rollout: RuntimeError: CUDA out of memory")
    assert not bool(result.scores.finite[0])


def test_a_nan_weight_model_in_closed_loop_stops_instead_of_crashing():
    """The route runs to its cap without an agent failure: every replan is rejected and the car stays put."""
    agent = DrivingAgent(_model(nan_in="backbone"), name="drivewm")
    limits = RunLimits(max_route_length=20.0, max_sim_seconds=1.5, camera_size=(32, 18))
    backend = dataclasses.replace(FAST_BACKEND, render=True)
    rec = run_route(backend, agent, devtest_route("0"), 0, limits)
    assert rec["failure"] is None, rec["failure"]
    st = rec["planner"]
    assert st["replans"] >= 3 and st["rejection_reasons"] == {"MODEL_ERROR": st["replans"]}
    assert st["control_guards"] == 0 and rec["km_driven"] < 0.002


def test_controller_brakes_on_a_stop_plan_at_any_speed():
    """At ≥ 200 m/s the comfortable stop used to be tracked with throttle 1.0 (the throttle map's fade
    clamped at 5 %): above the vehicle's top speed there is no throttle, and a stop plan brakes."""
    for speed in (5.0, 20.0, 29.9, 30.0, 200.0, 1000.0):
        obs = observation(speed)
        stop = generate_proposals(obs.route, obs.route_valid, obs.speed).plans[0, 0]
        control = PlanController()(stop, speed)
        assert control.throttle == 0.0 and control.brake > 0.0, (speed, control)
    # a plan that keeps going at 200 m/s is not given throttle either (it adds nothing up there)
    cruise = torch.stack([200.0 * 0.5 * torch.arange(1, 7.0), torch.zeros(6), torch.zeros(6)], -1)
    throttle, _, brake, _ = track_plans(cruise[None], torch.tensor([200.0]), PlanController().params)
    assert float(throttle[0]) == 0.0 and float(brake[0]) == 0.0


def test_malformed_inputs_name_the_field():
    model = _model()
    obs = _obs(model)
    with pytest.raises(ValueError, match=r"Observation\.ego_history has shape \[1, 1, 3\], expected \[1, 5, 3\]"):
        plan(model, dataclasses.replace(obs, ego_history=torch.zeros(1, 1, 3)))
    with pytest.raises(ValueError, match="Observation.images has 5 cameras"):
        plan(model, _obs(model, cameras=5))
    with pytest.raises(ValueError, match="Observation.images has 5 cameras"):
        model.encode(_obs(model, cameras=5))
    model.encode(_obs(model, cameras=4))  # the declared four-camera subset runs
    with pytest.raises(ValueError, match="plan is empty"):
        PlanController()(torch.zeros(0, 3), 3.0)
    with pytest.raises(ValueError, match="plans are empty"):
        PlanFollower().set_plans(torch.zeros(1, 3), torch.zeros(1, 0, 3), 0.0)
    with pytest.raises(ValueError, match="speed contains NaN"):
        PlanController()(torch.zeros(6, 3), float("nan"))


def test_nan_weights_are_refused_at_load_naming_the_checkpoint(tmp_path):
    path = write_checkpoint(tmp_path / "diverged.ckpt", nan_weights=True)
    with pytest.raises(ValueError, match=r"checkpoint .*diverged\.ckpt has NaN or infinite weights .*backbone"):
        load_world_model(path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        load_world_model(tmp_path)
    good = load_world_model(write_checkpoint(tmp_path / "good.ckpt"))
    assert isinstance(good, DriveWorldModel)


def test_ego_plans_of_the_wrong_horizon_are_a_model_error():
    """A model whose own ego plans do not fit the planner's horizon (8 steps, not 6) is rejected, not raised."""
    from planner.world_models import EmptyWorldModel

    class EightStepPlans(EmptyWorldModel):
        def encode(self, obs, prev=None):
            return dataclasses.replace(super().encode(obs, prev), ego_plans=torch.zeros(1, 2, 8, 3))

    result = plan(EightStepPlans(), observation())
    _assert_stop(result, RejectReason.MODEL_ERROR, "SceneState.ego_plans")


def test_unsafe_and_truncated_checkpoints_say_why(tmp_path):
    from drivewm.model.checkpoint import read_checkpoint
    from tests.drivewm.bad_input_files import write_malicious, write_truncated

    marker = tmp_path / "PWNED"
    with pytest.raises(ValueError, match=r"evil\.ckpt holds pickled Python objects .*posix\.system.*could run code"):
        read_checkpoint(write_malicious(tmp_path / "evil.ckpt", marker))
    assert not marker.exists()
    good = write_checkpoint(tmp_path / "good.ckpt")
    with pytest.raises(ValueError, match=r"half\.ckpt is truncated or corrupt"):
        read_checkpoint(write_truncated(good, tmp_path / "half.ckpt"))
    (tmp_path / "text.ckpt").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.ckpt is corrupt or not a torch checkpoint"):
        read_checkpoint(tmp_path / "text.ckpt")
