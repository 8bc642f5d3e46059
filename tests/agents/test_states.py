import pytest
import torch

from agents import EGO, AgentClass, AgentStates, Control


def _states(a: int = 3) -> AgentStates:
    return AgentStates.create(
        xy=torch.randn(2, a, 2),
        yaw=torch.zeros(2, a),
        speed=torch.ones(2, a),
        size=torch.tensor([4.5, 1.9, 1.6]).expand(2, a, 3),
        cls=torch.full((2, a), int(AgentClass.CAR)),
    )


def test_create_fills_velocity_and_validates():
    s = _states()
    assert s.batch_shape == (2, 3)
    torch.testing.assert_close(s.velocity[..., 0], torch.ones(2, 3))
    assert s.index(torch.tensor([0, 2])).num_agents == 2


@pytest.mark.parametrize(
    ("field", "bad", "msg"),
    [
        ("xy", torch.full((2, 3, 2), float("nan")), "xy contains NaN"),
        ("size", torch.ones(2, 3, 2), "size has shape"),
        ("cls", torch.full((2, 3), 99), "unknown class"),
        ("valid", torch.ones(2, 3), "valid must be bool"),
    ],
)
def test_validate_names_the_field(field, bad, msg):
    s = _states()
    d = dict(s.__dict__)
    d[field] = bad
    with pytest.raises(ValueError, match=msg):
        AgentStates(**d).validate()


def test_control_validation():
    Control(0.5, -0.2, 0.0).validate()
    with pytest.raises(ValueError, match="steer"):
        Control(0.0, 1.5, 0.0).validate()
    with pytest.raises(ValueError, match="throttle"):
        Control(float("nan"), 0.0, 0.0).validate()


def test_ego_constants_are_the_nuscenes_car():
    assert EGO.size == (4.084, 1.85, 1.56)
    assert EGO.rear_axle_to_center == 1.38
    # rear axle → front bumper: the centre offset plus half the length (where the ego "reaches" a line)
    assert EGO.front_overhang == pytest.approx(1.38 + 4.084 / 2)
