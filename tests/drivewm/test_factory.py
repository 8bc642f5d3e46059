import pickle

import pytest

from carla_bridge.closed_loop.agent import Agent, AutopilotAgent
from drivewm.driving_agent import DrivingAgent
from drivewm.factory import AGENTS, WORLD_MODELS, AgentSpec, build_agent, build_world_model
from planner import WorldModel
from planner.world_models import ConstantVelocityWorldModel, EmptyWorldModel


def test_names_build_the_right_things():
    assert set(AGENTS) == {"drivewm", "drivewm-noplan", "cv", "cv-gt", "empty", "oracle", "autopilot"}
    assert isinstance(build_world_model("empty"), EmptyWorldModel)
    cvgt = build_world_model("cv-gt")
    assert isinstance(cvgt, ConstantVelocityWorldModel) and cvgt.privileged and isinstance(cvgt, WorldModel)
    ap = build_agent("autopilot")
    assert isinstance(ap, AutopilotAgent) and ap.privileged and isinstance(ap, Agent)
    for name, privileged, images in (("cv-gt", True, False), ("empty", False, False), ("oracle", True, False)):
        agent = build_agent(name, replan_hz=5.0)
        assert isinstance(agent, DrivingAgent) and isinstance(agent, Agent)
        assert (agent.name, agent.privileged, agent.needs_images, agent.replan_hz) == (name, privileged, images, 5.0)


def test_unknown_names_and_missing_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"unknown agent 'fancy'; known: drivewm .*autopilot"):
        build_agent("fancy")
    with pytest.raises(ValueError, match=r"unknown world model 'autopilot'; known: drivewm"):
        build_world_model("autopilot")
    for name in ("drivewm", "drivewm-noplan", "cv"):
        with pytest.raises(ValueError, match="needs a trained checkpoint"):
            build_agent(name)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            build_agent(name, ckpt=str(tmp_path / "nope.ckpt"))
    with pytest.raises(ValueError, match="simulator handle"):
        build_world_model("oracle")
    with pytest.raises(ValueError, match="replan_hz"):
        AgentSpec("empty", replan_hz=20.0)
    assert set(WORLD_MODELS) < set(AGENTS)


def test_agent_spec_pickles_and_builds():
    spec = AgentSpec("cv-gt", replan_hz=2.0, camera_size=(32, 18))
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and again.privileged and not again.needs_images
    agent = again()
    assert isinstance(agent, DrivingAgent) and agent.name == "cv-gt"
    assert agent.sensors()[0]["width"] == 32
