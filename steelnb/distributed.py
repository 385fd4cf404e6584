"""Several processes, one run: torchrun's environment, the process group, and the few collectives steelnb uses.

Launched by torchrun (`torchrun --nproc-per-node 2 -m steelnb.cli train ...`), every process finds RANK,
WORLD_SIZE and LOCAL_RANK in its environment. A command joins the group with `session(device)` (gloo on the
CPU, nccl on CUDA with each process on its own GPU, `cuda:LOCAL_RANK`) and leaves it at the end. Without torchrun,
or outside a session, the world is one process and every function here is the identity: no process group, no
torch.distributed call, results bit for bit those of a plain run.

- `shard(n)` / `share(n)`: this process's contiguous part of n items (sizes differ by at most one); `gather(array)`:
  every process's part concatenated in rank order, on every process (so `gather(x[share(n)])` is x everywhere).
- `on_main(fn)`: fn run by rank 0 alone, its result on every process; `main_first(fn)`: each machine's first
  process first (it fills the machine's decode cache, which the others then map), then the others;
  `main_context(make)`: a context (a claimed run folder) entered by rank 0 alone. An error raised in the part run
  first is raised on every process, so none waits for a collective that will never come.
- `parallel(module, device)`: DistributedDataParallel over the group; `sum_all`, `broadcast`, `broadcast_buffers`.
- `synchronise_batch_norm(module)`: batch-norm layers whose training-mode statistics are the whole batch's, over
  every process's shard (`torch.nn.SyncBatchNorm` on nccl; `GroupBatchNorm`, its equivalent, on gloo, as
  SyncBatchNorm refuses CPU tensors); so that a model trained on N processes trains as on one. Only training
  needs it: in eval mode batch norm uses its running statistics, so frozen feature extraction (detect, predict,
  the inspection types' starting features, the loop's own feature passes) is the same on any number of processes.

>>> shard(5), share(5), gather(np.arange(3)), on_main(lambda: "rank 0's")  # one process: identities
(array([0, 1, 2, 3, 4]), slice(0, 5, None), array([0, 1, 2]), "rank 0's")
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from timm.layers import BatchNormAct2d
from timm.layers import convert_sync_batchnorm as timm_sync_batchnorm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

T = TypeVar("T")
TIMEOUT = datetime.timedelta(minutes=30)  # a collective waits this long for the others (rank 0 clusters alone)


@dataclass(frozen=True)
class World:
    """This process's place in the group: `rank` of `size` processes, `local_rank` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes the outputs (rank 0)."""
        return self.rank == 0


def launched() -> bool:
    """Whether torchrun started several processes (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether a process group of more than one process is joined."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> World:
    """The joined group's rank and size; World() (rank 0 of 1) outside a session."""
    if not active():
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _wants_cuda(device: str) -> bool:
    """Whether the group should be nccl's: a CUDA device asked for (or "auto") and present. Without CUDA, "cuda" joins
    gloo, and the command then names the missing GPU in one line on every process (`backbones.resolve_device`)."""
    return (device.startswith("cuda") or device == "auto") and torch.cuda.is_available()


def local_device(device: str | torch.device = "auto") -> torch.device:
    """The device this process computes on: "auto" is CUDA when present, else the CPU; with several processes
    a CUDA device is this process's own GPU, `cuda:LOCAL_RANK`. (Commands check first that the machine has the
    device asked for: `backbones.resolve_device`.)"""
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[World]:
    """Join torchrun's process group for one command and leave it at the end; one process: nothing to join."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        yield world()
        return
    backend = "nccl" if _wants_cuda(device) else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_device(device))
    dist.init_process_group(backend, timeout=TIMEOUT)
    try:
        yield world()
    finally:
        dist.destroy_process_group()


# -- who does what ----------------------------------------------------------------------------------
def share(n: int) -> slice:
    """This process's contiguous part of range(n), as np.array_split cuts it."""
    w = world()
    size, extra = divmod(n, w.size)
    start = w.rank * size + min(w.rank, extra)
    return slice(start, start + size + (w.rank < extra))


def shard(indices: int | np.ndarray) -> np.ndarray:
    """This process's contiguous part of `indices` (an array, or n for range(n))."""
    indices = np.arange(indices) if isinstance(indices, int | np.integer) else np.asarray(indices)
    return indices[share(len(indices))]


def _comm_device() -> torch.device:
    """Where tensors must be for the group's backend: the GPU for nccl, the CPU for gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def gather(array: np.ndarray) -> np.ndarray:
    """Every process's `array` concatenated along the first axis in rank order, on every process.

    Parts may differ in length (an empty part takes the others' shape); they travel as bytes, any dtype.
    """
    if not active():
        return array
    array = np.ascontiguousarray(array)
    described: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(described, (array.shape, array.dtype.str))
    longest = max(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in described)
    device = _comm_device()
    mine = torch.zeros(max(longest, 1), dtype=torch.uint8, device=device)
    mine[:array.nbytes] = torch.from_numpy(array.reshape(-1).view(np.uint8)).to(device)
    received = [torch.empty_like(mine) for _ in described]
    dist.all_gather(received, mine)
    parts = []
    for (shape, dtype), data in zip(described, received, strict=True):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        parts.append(data[:nbytes].cpu().numpy().view(dtype).reshape(shape))
    filled = [p for p in parts if p.size] or parts[:1]
    return np.concatenate(filled) if len(filled) > 1 else filled[0].copy()


def broadcast(value: T) -> T:
    """Rank 0's `value` (anything picklable) on every process."""
    if not active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sum_all(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over the processes (a new tensor; `tensor` itself when alone)."""
    if not active():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def barrier() -> None:
    if active():
        dist.barrier()


def _portable(error: BaseException | None) -> BaseException | None:
    """`error` if it pickles (ours do), else a RuntimeError with its message."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _share_outcome(error: BaseException | None) -> None:
    """Tell every process whether rank 0's step failed; raise rank 0's error on the others."""
    shared = broadcast(_portable(error))
    if shared is not None and error is None:
        raise shared


def on_main(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` run by rank 0 alone; its result (picklable) or its error on every process."""
    if not active():
        return fn(*args, **kwargs)
    result = None
    if world().main:
        try:
            result = fn(*args, **kwargs)
        except Exception as error:
            _share_outcome(error)
            raise
    _share_outcome(None)
    return broadcast(result)


def main_first(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` on every process, the first process of each machine (LOCAL_RANK 0) before the others:
    loading a set, it fills the machine's decode cache, which the others then map. An error of a first process is
    raised on every process before the others start."""
    if not active():
        return fn(*args, **kwargs)
    first = world().local_rank == 0
    result, error = None, None
    if first:
        try:
            result = fn(*args, **kwargs)
        except Exception as raised:
            error = raised
    outcomes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(outcomes, _portable(error))
    if error is not None:
        raise error
    failed = next((outcome for outcome in outcomes if outcome is not None), None)
    if failed is not None:
        raise failed
    return result if first else fn(*args, **kwargs)


@contextlib.contextmanager
def main_context(make: Callable[[], contextlib.AbstractContextManager[T]]) -> Iterator[T | None]:
    """The context `make()` entered by rank 0 alone (it yields its value there, None elsewhere); an error on
    entering it is raised on every process. Used to claim a run folder once."""
    with contextlib.ExitStack() as stack:
        if not active():
            yield stack.enter_context(make())
            return
        value = None
        if world().main:
            try:
                value = stack.enter_context(make())
            except Exception as error:
                _share_outcome(error)
                raise
        _share_outcome(None)
        yield value


# -- models -----------------------------------------------------------------------------------------
def parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` wrapped in DistributedDataParallel (its gradients averaged over the processes in the backward
    pass, rank 0's buffers sent to the others at each forward); `module` itself when alone."""
    if not active():
        return module
    # Weights stored with unusual strides (ConvNeXt's 1 x 1 convolutions) make DDP warn at every backward that
    # their gradients are copied into its buckets: a cost, not an error.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides", category=UserWarning)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) into every process's copy of `module`."""
    if not active():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


# -- batch norm over the processes ------------------------------------------------------------------
def synchronise_batch_norm(module: nn.Module) -> bool:
    """Replace, in place, every batch-norm layer of `module` (torch's and timm's `BatchNormAct2d`, its activation
    kept) by one whose training-mode statistics are taken over the whole batch, every process's shard of it:
    `torch.nn.SyncBatchNorm` on nccl (timm's conversion), `GroupBatchNorm` on gloo. Parameters and buffers are the
    same tensors under the same names, so optimisers built before stay valid and `state_dict()` loads into the
    plain model. Returns whether a layer was replaced (never when alone: one process keeps plain batch norm).

    >>> model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    >>> synchronise_batch_norm(model), type(model[1]).__name__  # one process: nothing to synchronise
    (False, 'BatchNorm2d')
    """
    if not active() or not any(isinstance(m, _BatchNorm) for m in module.modules()):
        return False
    convert = timm_sync_batchnorm if dist.get_backend() == "nccl" else GroupBatchNorm.convert
    for name, child in module.named_children():
        module.add_module(name, convert(child))
    return True


class SumOverProcesses(torch.autograd.Function):
    """`sum_all` through which gradients flow: the backward sums the gradients over the processes too, so each
    process's input receives what every process's loss owes it (torch.distributed.nn's, deprecated, did this)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        return sum_all(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return sum_all(grad.contiguous())


class GroupBatchNorm(_BatchNorm):
    """`torch.nn.SyncBatchNorm` for a gloo group (CPU tensors, which SyncBatchNorm refuses).

    In training mode, with a process group joined, each process sums over its shard, per channel, the count, the
    values and their squares (less a shift common to every process, the running mean, against cancellation); one
    all-reduce gives the sums of the whole batch, from which every process takes the same mean and (biased)
    variance, normalises its shard and updates its running statistics (unbiased variance), which stay equal on
    every process. The all-reduce is differentiable (its backward all-reduces the gradients), so the gradient is
    the whole batch's, as in one process. Otherwise (eval mode, or alone) it is plain batch norm. A converted
    timm `BatchNormAct2d` keeps its `drop` and `act`, applied after, as timm's `SyncBatchNormAct` does.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._normalise(x) if self.training and active() else super().forward(x)
        for name in ("drop", "act"):  # a converted BatchNormAct2d's, in its order
            if hasattr(self, name):
                x = getattr(self, name)(x)
        return x

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        """`x` normalised with the whole batch's statistics; the running statistics updated from them."""
        self._check_input_dim(x)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        dims = [0, *range(2, x.dim())]
        shift = self.running_mean.detach().clone() if self.running_mean is not None else x.new_zeros(x.shape[1])
        centred = x - shift.view(shape)
        count = x.new_full((1,), x.numel() // x.shape[1])
        sums = SumOverProcesses.apply(torch.cat([centred.sum(dims), centred.square().sum(dims), count]))
        channels, n = x.shape[1], sums[-1]
        offset = sums[:channels] / n
        variance = (sums[channels:2 * channels] / n - offset.square()).clamp_min(0)
        mean = shift + offset
        scale = torch.rsqrt(variance + self.eps)
        if self.affine:
            scale = scale * self.weight
        bias = -mean * scale + (self.bias if self.affine else 0)
        if self.track_running_stats and self.running_mean is not None:
            self._track(mean.detach(), variance.detach() * n / (n - 1).clamp_min(1))
        return x * scale.view(shape) + bias.view(shape)

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, unbiased_variance: torch.Tensor) -> None:
        """The running statistics moved towards the batch's, as F.batch_norm moves them."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased_variance, factor)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """`module` with its batch-norm layers (itself included) replaced by GroupBatchNorm sharing their
        parameters and buffers, as `torch.nn.SyncBatchNorm.convert_sync_batchnorm` does."""
        if isinstance(module, _BatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
            converted.weight, converted.bias = module.weight, module.bias
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
            if isinstance(module, BatchNormAct2d):
                converted.drop, converted.act = module.drop, module.act
            module = converted
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module
