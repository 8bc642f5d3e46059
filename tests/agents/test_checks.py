"""`agents.checks.check_tensor`: the one validator that names the field."""

import pytest
import torch

from agents.checks import check_tensor


def test_shapes_with_wildcards_and_ellipsis():
    t = torch.zeros(2, 3, 4)
    for shape in ((2, 3, 4), (None, 3, None), (2, ...), (..., 4), (2, ..., 4), (..., 2, 3, 4), (2, 3, ..., 4)):
        assert check_tensor("t", t, shape) is t
    for shape, shown in (((2, 3), "[2, 3]"), ((3, ...), "[3, ...]"), ((..., 5), "[..., 5]"), ((2, ..., 3, 3, 4), None)):
        with pytest.raises(ValueError, match=r"t has shape \[2, 3, 4\], expected") as err:
            check_tensor("t", t, shape)
        if shown:
            assert str(err.value).endswith(f"expected {shown}")


def test_type_dtype_floating_and_finiteness_are_named():
    with pytest.raises(ValueError, match="Obs.speed must be a torch.Tensor, got list"):
        check_tensor("Obs.speed", [1.0])
    with pytest.raises(ValueError, match="Obs.speed must have dtype torch.float32, got torch.float64"):
        check_tensor("Obs.speed", torch.zeros(2, dtype=torch.float64), (2,), torch.float32)
    with pytest.raises(ValueError, match="traj must be a floating-point tensor, got torch.int64"):
        check_tensor("traj", torch.zeros(3, dtype=torch.int64), floating=True)
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        check_tensor("x", torch.tensor([1.0, float("inf")]))
    assert check_tensor("x", torch.tensor([float("inf")]), finite=False).isinf().all()
    assert check_tensor("i", torch.tensor([3])).dtype == torch.int64  # integers are never "non-finite"
