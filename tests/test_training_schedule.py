"""Learning-rate schedules shared by the training commands."""

from __future__ import annotations

import pytest
import torch

from geotool.training.schedule import lr_factor, make_scheduler


def test_linear_decay_is_flat_then_falls_to_near_zero():
    f = lr_factor("linear-decay", 100)
    factors = [f(i) for i in range(100)]
    assert factors[:51] == [1.0] * 51
    assert all(a > b for a, b in zip(factors[50:], factors[51:]))  # strictly falling over the second half
    assert factors[-1] == pytest.approx(0.02) and min(factors) > 0


def test_linear_decay_of_a_one_step_run_keeps_the_full_rate():
    assert lr_factor("linear-decay", 1)(0) == 1.0


def test_cosine_falls_from_one_through_half_to_its_floor():
    f = lr_factor("cosine", 100)
    factors = [f(i) for i in range(101)]
    assert factors[0] == 1.0 and factors[50] == pytest.approx(0.5)
    assert all(a >= b for a, b in zip(factors, factors[1:]))
    assert factors[-1] == pytest.approx(0.01) and min(factors) == pytest.approx(0.01)  # never below 1 / total_steps


def test_constant_and_unknown():
    assert {lr_factor("constant", 10)(i) for i in range(10)} == {1.0}
    with pytest.raises(ValueError, match="linear-decay or cosine"):
        lr_factor("step", 10)


def test_scheduler_drives_the_optimizer():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = make_scheduler(opt, "linear-decay", 10)
    for _ in range(9):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.2)
