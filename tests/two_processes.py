"""Run by tests/test_distributed.py under torchrun (2 processes, gloo): the helpers of steelnb.distributed across
processes. Each process writes what it found to OUT_DIR/rank<r>.json (OUT_DIR: the first argument). A script, not
a test module: nothing runs on import (pytest --doctest-modules imports it)."""

import copy
import json
import sys
from pathlib import Path

import numpy as np
import torch
from timm.layers import BatchNormAct2d
from torch import nn

from steelnb import distributed
from steelnb.data import DataError


def batch_norm_across(found: dict) -> None:
    """A model with batch norm (torch's, timm's BatchNormAct2d) trained one step on a batch cut into shards of 3
    and 2 images, synchronised, against the same model on the whole batch in this process: the largest
    differences of outputs, gradients and running statistics; the layers' types and state_dict keys after."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1), BatchNormAct2d(4), nn.Flatten())
    images, target = torch.randn(5, 3, 6, 6) * 2 + 1, torch.randn(5, 64)
    whole = copy.deepcopy(model)
    keys = list(model.state_dict())
    found["bn_synced"] = distributed.synchronise_batch_norm(model)
    found["bn_types"] = [type(layer).__name__ for layer in model]
    found["bn_keys_kept"] = list(model.state_dict()) == keys
    rows = distributed.share(len(images))
    with torch.no_grad():  # a forward pass alone, as between extractor updates: running statistics move
        whole(images + 1)
        model(images[rows] + 1)
    expected = whole(images)
    (expected * target).mean().backward()
    parallel = distributed.parallel(model, torch.device("cpu"))  # held: its reducer averages in the backward
    output = parallel(images[rows])
    # the shard's sum over the whole batch's count, times the processes: DDP's mean is the whole batch's mean
    ((output * target[rows]).sum() / target.numel() * distributed.world().size).backward()
    found["bn_output"] = float((output - expected[rows]).detach().abs().max())
    found["bn_grad"] = max(float((a.grad - b.grad).abs().max()) for a, b in zip(model.parameters(),
                                                                                  whole.parameters(), strict=True))
    found["bn_running"] = max(float((a - b).abs().max()) for a, b in zip(model.buffers(), whole.buffers(),
                                                                           strict=True))


def main(out_dir: Path) -> None:
    with distributed.session("cpu") as world:
        found = {"rank": world.rank, "size": world.size}
        # uneven parts, any dtype and shape; an empty part (1 item on 2 processes) takes the others' shape
        for n in (5, 1):
            mine = distributed.shard(n)
            maps = (np.arange(n * 6, dtype=np.float16).reshape(n, 2, 3) + 0.5)[mine]
            found[f"gather_{n}"] = distributed.gather(maps).tolist()
        found["shares"] = distributed.gather(np.array([len(distributed.shard(5))])).tolist()
        found["on_main"] = distributed.on_main(lambda: f"from rank {world.rank}")
        found["sum"] = float(distributed.sum_all(torch.tensor(float(world.rank + 1))))
        found["first"] = distributed.main_first(lambda: world.rank)

        def fails():
            raise DataError(f"no pile here (rank {world.rank})")

        for name, call in (("main_first_error", lambda: distributed.main_first(fails)),
                           ("on_main_error", lambda: distributed.on_main(fails))):
            try:
                call()
            except DataError as error:
                found[name] = str(error)
        linear = torch.nn.Linear(3, 1)
        torch.nn.init.constant_(linear.weight, float(world.rank))  # different start: DDP sends rank 0's
        model = distributed.parallel(linear, torch.device("cpu"))
        model(torch.ones(2, 3) * (world.rank + 1)).sum().backward()
        found["weight"] = linear.weight.detach().tolist()
        found["grad"] = linear.weight.grad.tolist()  # the mean of the processes' gradients
        batch_norm_across(found)
        (out_dir / f"rank{world.rank}.json").write_text(json.dumps(found))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
