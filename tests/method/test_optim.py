"""The optimisers and the extractor's learning-rate schedule."""

import pytest
import torch

from steelnb.method.optim import OPTIMIZERS, make_optimizer, make_scheduler


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_is_made_with_its_lr_and_weight_decay(name):
    optimizer = make_optimizer(name, [torch.nn.Parameter(torch.zeros(2))], 0.01, 0.001)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, OPTIMIZERS[name]) and group["lr"] == 0.01 and group["weight_decay"] == 0.001


def test_the_schedule_warms_up_then_anneals_to_zero():
    optimizer = make_optimizer("adamw", [torch.nn.Parameter(torch.zeros(2))], 1.0, 0.0)
    scheduler = make_scheduler(optimizer, warmup_steps=2, total_steps=6)
    rates = [optimizer.param_groups[0]["lr"]]
    for _ in range(6):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(0.1)  # the warm-up's start factor
    assert rates[2] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.0, abs=1e-9)
