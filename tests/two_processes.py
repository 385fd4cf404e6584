"""Run by tests/test_distributed.py under torchrun (2 processes, gloo): the helpers of steelnb.distributed across
processes. Each process writes what it found to OUT_DIR/rank<r>.json (OUT_DIR: the first argument). A script, not
a test module: nothing runs on import (pytest --doctest-modules imports it)."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from steelnb import distributed
from steelnb.data import DataError


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
        (out_dir / f"rank{world.rank}.json").write_text(json.dumps(found))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
