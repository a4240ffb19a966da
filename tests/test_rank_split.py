"""The data split across ranks (issue 27), end to end: 2 gloo ranks with 2 loader workers each,
``RANK_SPLIT: global_shuffle`` (the paper config's default), and a run killed mid-epoch that
resumes with exactly the samples the uninterrupted run drew."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import write_image_folder
from test_training_e2e import INSTRUMENTED, TIMEOUT, free_port, paper_config_on_cpu, run

pytestmark = pytest.mark.slow

IMAGES, BATCH, EPOCHS = 16, 2, 2  # 2 classes of 8 (sorted: indices 0-7, 8-15); 4 steps an epoch
STEPS_PER_EPOCH = IMAGES // (2 * BATCH)


def two_rank_overrides(images: Path, checkpoints: Path, *extra: str) -> List[str]:
    return paper_config_on_cpu(
        images, checkpoints, "+config/pretrain/pirl/trunk=resnet18",
        "config.DISTRIBUTED.NUM_PROC_PER_NODE=2", "config.DISTRIBUTED.INIT_METHOD=tcp",
        f"config.DISTRIBUTED.RUN_ID=127.0.0.1:{free_port()}",
        f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={BATCH}", "config.DATA.NUM_DATALOADER_WORKERS=2",
        f"config.OPTIMIZER.num_epochs={EPOCHS}", *extra)


def drawn(dumps: Path) -> Dict[int, Dict[int, List[int]]]:
    """``{rank: {iteration: sample indices}}`` as the instrumented run logged them."""
    return {rank: {record["iteration"]: record["indices"] for record in
                   map(json.loads, (dumps / f"indices_rank{rank}.jsonl").read_text().splitlines())}
            for rank in (0, 1)}


def epoch_of(draws: Dict[int, List[int]], epoch: int) -> List[int]:
    return sum((draws[i] for i in range(epoch * STEPS_PER_EPOCH, (epoch + 1) * STEPS_PER_EPOCH)),
               [])


def test_every_rank_sees_every_class_and_a_killed_run_resumes_with_the_same_samples(tmp_path):
    """The global shuffle gives each rank both classes (VISSL's blocks: rank 0 the first class,
    rank 1 the second, in every epoch), a new share each epoch and every image once. Killed
    after the iteration checkpoint of step 6 (epoch 1, step 2 of 4), the resumed run draws for
    steps 6 and 7 exactly the samples of the uninterrupted run, on both ranks."""
    images = write_image_folder(tmp_path / "images", num_images=IMAGES)
    whole_dumps = tmp_path / "whole_dumps"
    whole_dumps.mkdir()
    run([INSTRUMENTED, str(whole_dumps), *two_rank_overrides(images, tmp_path / "whole")],
        cwd=tmp_path)
    whole = drawn(whole_dumps)
    for epoch in range(EPOCHS):
        shares = [epoch_of(whole[rank], epoch) for rank in (0, 1)]
        assert sorted(shares[0] + shares[1]) == list(range(IMAGES))
        assert all({index // (IMAGES // 2) for index in share} == {0, 1} for share in shares)
    assert epoch_of(whole[0], 0) != epoch_of(whole[0], 1)

    checkpoints = tmp_path / "split"
    overrides = two_rank_overrides(images, checkpoints,
                                   "config.CHECKPOINT.CHECKPOINT_ITER_FREQUENCY=3")
    first = tmp_path / "first_dumps"
    first.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PIRL_TEST_STEP_SLEEP="1.0")
    process = subprocess.Popen([sys.executable, INSTRUMENTED, str(first), *overrides],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + TIMEOUT
    link = checkpoints / "checkpoint.torch"
    while not (link.is_symlink() and os.readlink(link).endswith("model_iteration6.torch")):
        assert process.poll() is None and time.time() < deadline, "no iteration checkpoint"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    resumed_dumps = tmp_path / "resumed_dumps"
    resumed_dumps.mkdir()
    run([INSTRUMENTED, str(resumed_dumps), *overrides], cwd=tmp_path)

    resumed = drawn(resumed_dumps)
    for rank in (0, 1):
        assert sorted(resumed[rank]) == [6, 7]
        assert resumed[rank] == {step: whole[rank][step] for step in (6, 7)}
