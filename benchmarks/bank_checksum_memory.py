"""Extra peak RSS of the bank checksum on an ImageNet-size bank (1,281,167 x 128 float32).

``python benchmarks/bank_checksum_memory.py whole`` measures the float64 whole-bank checksum
that ``MemoryBankUpdateHook`` computed before issue 13, ``... chunked`` today's
``bank_checksum``; each in its own process (docs/performance.md).
"""
import resource
import sys
import time

import torch

torch.set_num_threads(1)
bank = torch.nn.functional.normalize(torch.randn(1_281_167, 128), dim=1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
if sys.argv[1] == "whole":  # the checksum before this change
    flat = bank.reshape(-1).double()
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    value = torch.stack([flat.sum(), (flat * weights).sum() / flat.numel()])
else:
    from vissl_pirl_plugin.hooks.memory_bank_hook import bank_checksum
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    value = bank_checksum(bank)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{sys.argv[1]}: extra peak {(peak - base) / 2**20:.2f} GiB, {elapsed:.2f} s, {value.tolist()}")
