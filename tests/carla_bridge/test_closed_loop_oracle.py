import torch
from carla_bridge.closed_loop.tracking import plan_for_controller, plan_in_world
from closed_loop_testkit import FAST_BACKEND, devtest_route

from agents import Control
from agents.se2 import se2_relative
from carla_bridge.oracle import OracleWorldModel
from planner.proposals import densify


def test_oracle_branches_match_one_world_at_a_time():
    backend = FAST_BACKEND("Town01")
    obs = backend.reset(devtest_route("0"), 0)
    for _ in range(10):
        obs, _ = backend.step(Control(0.4, 0.0, 0.0))
    world = backend.world
    before = world.snapshot()
    oracle = OracleWorldModel(world, max_branch=2)
    scene = oracle.encode(obs)
    plans = torch.zeros(1, 3, 6, 3)
    steps = torch.arange(1, 7, dtype=torch.float32)
    plans[0, 1, :, 0] = 1.0 * steps  # slow
    plans[0, 2, :, 0] = 3.0 * steps  # faster
    pred = oracle.rollout(scene, plans)
    pred.validate()
    assert world.snapshot().equals(before)  # branching never disturbs the driven world
    # the reference: each plan executed alone in its own single-world branch, in a plain loop
    pose0 = world.ego_pose()[0].clone()
    dense = densify(plans, scene.speed)[0]
    for i in range(3):
        ref = world.branch(1)
        ref.cfg = type(ref.cfg)(**{**ref.cfg.__dict__, "dt": 0.1})
        pw, times = plan_in_world(pose0[None], dense[i : i + 1])
        for k in range(1, 31):
            ref.step_plans(plan_for_controller(pw, times, (k - 1) * 0.1, ref.ego_pose()).float())
            if k % 5 == 0:
                a = ref.agents_world()
                rel = se2_relative(pose0.expand(a.xy.shape[1], 3), torch.cat([a.xy[0], a.yaw[0, :, None]], -1))
                got = pred.agent_trajs[0, i, :, 0, k // 5 - 1]
                ok = a.valid[0]
                assert torch.allclose(got[ok, :2], rel[ok, :2], atol=1e-3)
    # the true map: drivable cells exist ahead of the ego on a road
    assert 0.0 < float(pred.drivable_prob.mean()) < 1.0
    assert pred.light_probs.sum() == 1.0
