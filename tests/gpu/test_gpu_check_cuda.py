"""The GPU check kit's checks at full size on CUDA (``pytest -m gpu``, ``make gpu-check``);
skipped without CUDA by the ``gpu`` marker (tests/conftest.py)."""
import sys

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def test_loss_bank_and_hooks_at_imagenet_size_make_no_host_sync():
    result = gpu_check.check_loss_and_bank(CUDA)
    assert result["host_syncs"] == "none", result["host_syncs"]


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_paper_config_trains_with_amp_and_resumes_from_the_bank_saved_on_the_gpu(tmp_path, amp):
    result = gpu_check.train_and_resume(CUDA, tmp_path, amp)
    assert result["steps"] >= 200 and result["resumed_steps"] == 20
    assert result["bank_restored"] and result["losses_finite"]


def test_the_imagenet_linear_benchmark_runs_an_iteration(tmp_path):
    trained = gpu_check.train_and_resume(CUDA, tmp_path, "fp16", num_images=64, epochs=1)
    gpu_check.linear_iteration(CUDA, tmp_path, trained["checkpoint"])
