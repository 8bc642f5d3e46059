"""Planner tests run torch single-threaded: their tensors are small, and two threads per xdist
worker on two shared cores only add contention."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
