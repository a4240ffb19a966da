"""The GPU check kit's checks on the CPU at small sizes (benchmarks/gpu_check.py).

On the CPU the sync check is ``HostReadDetector``'s; these tests show the checks run and
measure what they say. On a lent GPU machine ``benchmarks/gpu_lease.py`` runs them at full size."""
import contextlib
import re
import sys

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_check  # noqa: E402

CPU = torch.device("cpu")


def test_loss_and_bank_check_runs_the_step_and_its_hooks():
    result = gpu_check.check_loss_and_bank(CPU, num_samples=4096, num_negatives=256, batch=4,
                                           steps=2)
    assert result["host_syncs"] == "none" and result["ms_per_step"] > 0
    assert result["bank_rows"] == 4096 and result["peak_gib"] is None


def test_a_host_sync_is_reported_with_its_place(monkeypatch):
    """What set_sync_debug_mode("error") raises on CUDA, raised here from inside the loss."""
    armed = []

    @contextlib.contextmanager
    def armed_check(device):
        armed.append(device)
        yield

    normalize = torch.nn.functional.normalize

    def synchronizing_normalize(*args, **kwargs):
        if armed:
            raise RuntimeError("called a synchronizing CUDA operation")
        return normalize(*args, **kwargs)
    monkeypatch.setattr(gpu_check, "no_host_sync", armed_check)
    monkeypatch.setattr(torch.nn.functional, "normalize", synchronizing_normalize)
    result = gpu_check.check_loss_and_bank(CPU, num_samples=512, num_negatives=16, batch=2,
                                           steps=1)
    assert re.fullmatch(r"called a synchronizing CUDA operation at vissl_pirl_plugin/\S+\.py:\d+",
                        result["host_syncs"]), result["host_syncs"]


def test_on_the_cpu_a_host_read_in_the_step_is_reported_with_its_place(monkeypatch):
    normalize = torch.nn.functional.normalize

    def reading_normalize(tensor, *args, **kwargs):
        tensor.sum().item()  # a host read, as a careless change to the loss would add
        return normalize(tensor, *args, **kwargs)
    monkeypatch.setattr(torch.nn.functional, "normalize", reading_normalize)
    result = gpu_check.check_loss_and_bank(CPU, num_samples=512, num_negatives=16, batch=2,
                                           steps=1)
    assert re.match(r"host read: item in \w+ at vissl_pirl_plugin/\S+\.py:\d+",
                    result["host_syncs"]), result["host_syncs"]


def test_one_training_step_of_ours_on_the_kits_device_path():
    """The demo config's small trunk: the step that train_throughput times, once, on the CPU."""
    photos = gpu_check.source_photographs()[:2]
    torch.manual_seed(0)
    step = gpu_check.make_train_step("ours", photos, ["config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=2"],
                                     dataset_size=64, num_negatives=8, image_size=64,
                                     device=CPU, augment_each_step=False)
    before = step.loss.memory_bank.embeddings.clone()
    step()
    assert not torch.equal(before, step.loss.memory_bank.embeddings)


@pytest.mark.slow
def test_training_step_throughput_of_both_implementations():
    """Two ResNet-50 training steps (VISSL's built-in PIRL and ours) at small sizes."""
    results = gpu_check.train_throughput(CPU, batch=2, repeats=1, dataset_size=64,
                                         num_negatives=8, image_size=64, amps=(None, "bf16"))
    assert set(results) == {"vissl_table_s", "vissl_fp32", "ours_fp32", "vissl_bf16", "ours_bf16"}
    assert all(row["images_per_s"] > 0 for key, row in results.items() if key != "vissl_table_s")


def test_without_cuda_the_kit_skips_with_a_message(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(sys, "argv", ["gpu_check.py", "--out", str(tmp_path / "out.json")])
    gpu_check.main()
    assert "SKIPPED" in capsys.readouterr().out and not (tmp_path / "out.json").exists()


@pytest.mark.slow
def test_paper_config_trains_resumes_and_runs_the_linear_benchmark_on_cpu(tmp_path):
    trained = gpu_check.train_and_resume(CPU, tmp_path, amp=None, num_images=8, batch=2,
                                         epochs=1, workers=0, image_size=64)
    assert trained["steps"] == 8 and trained["resumed_steps"] == 4
    assert trained["bank_restored"] and trained["losses_finite"]
    assert trained["retraced"]  # on the CPU with 0 workers the resumed epoch is exact
    result = gpu_check.linear_iteration(CPU, tmp_path, trained["checkpoint"])
    assert result["iterations"] == 1


@pytest.mark.slow
def test_the_device_augmentation_check_measures_pil_differences_syncs_and_feeding():
    """The kit's device_augmentation stage at small sizes on the CPU (no loader workers)."""
    result = gpu_check.check_device_augmentation(CPU, batch=2, workers=0, steps=1, image_size=64,
                                                 amp=None)
    assert result["host_syncs"] == "none"
    assert result["resize_max"] <= 1 and result["resize_mean"] < 0.1
    assert all(result[f"{name}_max"] == 0 for name in gpu_check.PIL_OPS)  # PIL's output exactly
    assert all(result[side]["samples_per_s"] > 0 for side in ("vissl", "ours", "ours_on_device"))
    assert 0 < result["ours_on_device"]["augmentation_share_of_step"] < 1


@pytest.mark.slow
def test_the_launch_bound_check_times_host_and_device_and_counts_launches():
    """The kit's launch_bound stage at small sizes on the CPU, eager only (where host and device
    time are both the wall time): the verdicts, the launches, the summary's lines."""
    result = gpu_check.check_launch_bound(CPU, **gpu_check.small_sizes(CPU)["launch_bound"])
    for name in ("loader_eager", "on_device_eager"):
        row = result[name]
        assert row["host_ms"] == row["gpu_ms"] > 0 and row["bound"] == "GPU-bound"
        assert row["samples_per_s"] > 0 and row["launches"] > 0
    assert result["on_device_eager"]["launches"] > result["loader_eager"]["launches"]
    assert len(result["lines"]) == 3 and result["lines"][1].startswith("loader-side, eager ")
