"""``CpuSyncBatchNorm``: PyTorch's ``SyncBatchNorm`` on CPU processes (gloo), for the batch norm
across ranks of VISSL's ``MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN``.

Batch norm (Ioffe & Szegedy, 2015) normalises each channel with the mean and the biased variance
of the batch; synchronised, the batch is the global one, split across the ranks of the process
group. PyTorch's ``SyncBatchNorm`` computes that on GPUs only (its statistics kernels have no CPU
version), and VISSL 0.1.6 skips the conversion without a word when ``MACHINE.DEVICE`` is ``cpu``.
This module has the parameters, buffers, state-dict keys and ``process_group`` of PyTorch's, and
computes the same global statistics with two differentiable all-reduces (``SumOverRanks``, whose
backward pass sums the gradients over the ranks as ``torch.distributed.nn``'s deprecated
``all_reduce`` did): the channel sums and the element count, then the sums of squared deviations
from the global mean (two passes, as exact as one process's ``batch_norm`` on the whole batch).
The running statistics take the unbiased global variance, as PyTorch's. Eval mode and a world
of one process run PyTorch's ``batch_norm``. It is not a subclass of ``nn.SyncBatchNorm``, which
DistributedDataParallel refuses on CPU modules.
"""
from typing import Any, Optional, Tuple

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class SumOverRanks(torch.autograd.Function):
    """The sum of a tensor over the ranks of a process group, differentiable: the gradient of
    every rank's input is the sum of the output's gradients over the ranks."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, group=group)
        return total

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> Tuple[torch.Tensor, None]:
        return SumOverRanks.apply(grad_output, ctx.group), None


class CpuSyncBatchNorm(_BatchNorm):
    """``nn.SyncBatchNorm``'s maths, for inputs of any device (gloo on CPUs)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 process_group: Optional[Any] = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self._synchronised(input):
            return super().forward(input)
        group = self.process_group or dist.group.WORLD
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        shape = (1, channels, *[1] * (input.dim() - 2))
        # sums and count in float64: a count above 2**24 elements stays exact
        local_count = torch.full((1,), input.numel() // channels, dtype=torch.float64)
        totals = SumOverRanks.apply(torch.cat([input.sum(dims).double(), local_count]), group)
        count = totals[channels]
        mean = (totals[:channels] / count).to(input.dtype)
        centred = input - mean.reshape(shape)
        variance = (SumOverRanks.apply(centred.pow(2).sum(dims).double(), group) / count
                    ).to(input.dtype)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach(), count)
        output = centred * torch.rsqrt(variance + self.eps).reshape(shape)
        if self.affine:
            output = output * self.weight.reshape(shape) + self.bias.reshape(shape)
        return output

    def _synchronised(self, input: torch.Tensor) -> bool:
        """Training with batch statistics in a process group of more than one process."""
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return False
        self._check_input_dim(input)
        return dist.get_world_size(self.process_group or dist.group.WORLD) > 1

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, variance: torch.Tensor,
                              count: torch.Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = variance * (count / (count - 1).clamp(min=1)).to(variance.dtype)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased, factor)

    @classmethod
    def convert(cls, module: nn.Module) -> nn.Module:
        """``module`` with each ``nn.SyncBatchNorm`` replaced by a ``CpuSyncBatchNorm`` holding the
        same parameters, buffers and process group (VISSL's conversion makes the former)."""
        if isinstance(module, nn.SyncBatchNorm):
            converted = cls(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, module.process_group)
            converted.load_state_dict(module.state_dict())
            converted.train(module.training)
            if module.affine:
                converted.requires_grad_(module.weight.requires_grad)
            return converted
        for name, child in module.named_children():
            module.add_module(name, cls.convert(child))
        return module

