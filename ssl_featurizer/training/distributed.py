"""Data-parallel pretraining on CPUs (``torchrun``, gloo): process group, global-batch BatchNorm, helpers.

Launch ``ssl-featurizer pretrain`` under ``torchrun --nproc_per_node N`` (one machine, or several with
``--nnodes``/``--rdzv-endpoint``) and :class:`~ssl_featurizer.training.trainer.Pretrainer` trains with
``DistributedDataParallel``. The result has the semantics of a single-process run with the same
settings: every step uses the same global batch of ``batch_size`` structures and the same masks,
split into one contiguous shard per rank; the loss is the mean over the whole global batch (each
rank's summed loss is divided by the global count), and BatchNorm normalises with the statistics of
the whole global batch (:class:`GlobalBatchNorm1d`). Only the order of floating-point sums differs.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn


def init_distributed(backend: str = "gloo") -> tuple[int, int]:
    """Join the process group described by ``torchrun``'s environment, if there is one.

    Returns:
        ``(rank, world_size)``; ``(0, 1)`` outside ``torchrun`` (nothing is initialised).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def finish_distributed() -> None:
    """Leave the process group (if any) after a final barrier."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of the current process group, ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    import torch.distributed as dist

    if world()[1] > 1:
        dist.barrier()


def all_reduce_sum(values: Tensor) -> Tensor:
    """Sum of ``values`` over all ranks (a new tensor; no gradient); the input without a process group."""
    import torch.distributed as dist

    out = values.detach().clone()
    if world()[1] > 1:
        dist.all_reduce(out)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is again a sum over ranks (every rank's loss uses the result)."""

    @staticmethod
    def forward(ctx, tensor: Tensor, group: object) -> Tensor:
        import torch.distributed as dist

        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` that, in training, normalises with the statistics of all ranks' rows together.

    ``torch.nn.SyncBatchNorm`` needs GPUs; this one works on CPU with gloo. Mean and variance are
    computed in two passes (sum, then centred sum of squares) with autograd-aware all-reduces, so the
    gradients are those of one BatchNorm over the concatenated global batch. Running statistics are
    updated exactly like ``BatchNorm1d`` (momentum, unbiased variance) and stay identical on all ranks.
    Parameters and buffers are those of ``BatchNorm1d``: state dicts are interchangeable. A rank may
    hold zero rows. In eval mode, or without a process group, it is plain ``BatchNorm1d``.
    """

    def __init__(self, num_features: int, group: object = None, **kwargs: object):
        super().__init__(num_features, **kwargs)
        self.group = group

    @classmethod
    def convert(cls, module: nn.Module, group: object = None) -> nn.Module:
        """Replace every ``BatchNorm1d`` inside ``module`` (in place) by a :class:`GlobalBatchNorm1d` sharing its state."""
        for name, child in module.named_children():
            if isinstance(child, nn.BatchNorm1d) and not isinstance(child, cls):
                if child.momentum is None or not (child.affine and child.track_running_stats):
                    raise ValueError("GlobalBatchNorm1d supports affine BatchNorm1d with momentum and running stats")
                new = cls(child.num_features, group=group, eps=child.eps, momentum=child.momentum)
                new.load_state_dict(child.state_dict())
                new.train(child.training)
                setattr(module, name, new)
            else:
                cls.convert(child, group)
        return module

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or world()[1] == 1:
            return super().forward(x)
        count = _AllReduceSum.apply(x.new_tensor([float(x.shape[0])]), self.group)
        mean = _AllReduceSum.apply(x.sum(0), self.group) / count
        centred = x - mean
        var = _AllReduceSum.apply((centred * centred).sum(0), self.group) / count
        with torch.no_grad():
            m = self.momentum
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (count / (count - 1).clamp(min=1)), alpha=m)
            self.num_batches_tracked.add_(1)
        return centred * torch.rsqrt(var + self.eps) * self.weight + self.bias
