"""Configs resolve to the plugin's files from any directory; every launch path gets the hook."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
from hydra_plugins.vissl_pirl_searchpath.vissl_pirl_searchpath import (
    PROVIDER,
    VisslPirlSearchPathPlugin,
)
from hydra_plugins.vissl_plugin.vissl_plugin import VisslPlugin
from vissl.hooks import LogLossMetricsCheckpointHook
from vissl.utils import distributed_launcher

from vissl_pirl_plugin.engine import launcher
from vissl_pirl_plugin.engine.config_validation import (
    prepare_augmentation,
    prepare_batch_norm,
    prepare_data,
    validate_config,
    warn_about_nce_on_a_small_dataset,
)
from vissl_pirl_plugin.engine.device_augmentation_train_step import TRAIN_STEP_NAME as DEVICE_STEP
from vissl_pirl_plugin.engine.device_augmentation_train_step import device_augmentation
from vissl_pirl_plugin.hooks.guarded_checkpoint_hook import GuardedCheckpointHook
from vissl_pirl_plugin.hooks.hook_generator import pirl_hook_generator
from vissl_pirl_plugin.hooks.memory_bank_hook import MemoryBankUpdateHook
from vissl_pirl_plugin.hooks.non_finite_guard_hook import NonFiniteGuardHook

from conftest import PAPER, REPO, compose

pytestmark = pytest.mark.usefixtures("in_tmp_dir")


@pytest.mark.parametrize("order", ["vissl_first", "plugin_first"])
def test_plugin_configs_come_first_whatever_the_plugin_order(order):
    search_path = ConfigSearchPathImpl()
    plugins = [VisslPlugin(), VisslPirlSearchPathPlugin()]
    for plugin in plugins if order == "vissl_first" else plugins[::-1]:
        plugin.manipulate_search_path(search_path)
    entries = search_path.get_path()
    assert entries[0].provider == PROVIDER
    assert entries[0].path == f"file://{REPO / 'configs'}"
    # VISSL's own entries keep their relative order behind ours
    assert [e.path for e in entries[1:3]] == ["file://configs", "pkg://configs"]


@pytest.mark.parametrize("cwd", ["repo", "elsewhere"])
def test_paper_config_is_the_plugins_from_any_directory(cwd, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO if cwd == "repo" else tmp_path)
    cfg = compose(PAPER, f"config.CHECKPOINT.DIR={tmp_path}")
    assert cfg.LOSS.name == "pirl_loss"  # VISSL's built-in file uses nce_loss_with_memory
    assert cfg.DATA.TRAIN.TRANSFORMS[0]["name"] == "ImgPilToPirlJigsaw"


def test_paper_config_carries_the_papers_hyperparameters():
    cfg = compose(PAPER)
    loss = cfg.LOSS.pirl_loss
    assert (loss.lambda_weight, loss.temperature, loss.num_negatives) == (0.5, 0.07, 32000)
    assert (loss.loss_type, loss.negative_sampling) == ("nce", "per_sample")
    assert (loss.memory_bank.embedding_dim, loss.memory_bank.momentum) == (128, 0.5)
    assert cfg.MODEL.TRUNK.NAME == "resnet" and cfg.MODEL.TRUNK.RESNETS.DEPTH == 50
    dist = cfg.DISTRIBUTED
    assert (dist.NUM_NODES, dist.NUM_PROC_PER_NODE, cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA) == (4, 8, 32)
    opt = cfg.OPTIMIZER
    assert (opt.name, opt.momentum, opt.weight_decay, opt.num_epochs) == ("sgd_multi_tensor", 0.9, 1e-4, 800)
    lr = opt.param_schedulers.lr
    assert lr.name == "cosine"
    # VISSL scales the lr with the global batch: 1024 images give the paper's 0.12 -> 1.2e-4
    assert lr.start_value == pytest.approx(0.12) and lr.end_value == pytest.approx(1.2e-4)
    jigsaw = cfg.DATA.TRAIN.TRANSFORMS[0]
    assert jigsaw["jigsaw_crop_scale"][0] == 0.6 and jigsaw["jigsaw_crop_size"] == 255
    assert (jigsaw["grid_size"], jigsaw["patch_size"], jigsaw["image_crop_size"]) == (3, 64, 224)
    heads = cfg.MODEL.HEAD.PARAMS
    assert heads[0][0][0] == "pirl_jigsaw_head" and heads[1][0][1]["dims"] == [2048, 128]


def test_hook_generator_adds_the_bank_hook_before_checkpointing():
    hooks = pirl_hook_generator(compose(PAPER))
    kinds = [type(h) for h in hooks]
    assert kinds.count(MemoryBankUpdateHook) == 1
    assert kinds.index(MemoryBankUpdateHook) < kinds.index(GuardedCheckpointHook)
    simclr = compose("config=pretrain/simclr/simclr_8node_resnet")
    assert MemoryBankUpdateHook not in [type(h) for h in pirl_hook_generator(simclr)]


def test_vissls_per_rank_nan_checks_give_way_to_the_guard():
    """VISSL's checkpoint hook would save the broken model on a NaN output and
    CheckNanModelOutput dies with an AttributeError, each on its own rank after a host read every
    step; CheckNanLoss repeats the guard's check of the averaged loss: with pirl_loss the guard
    checks on every rank together instead."""
    from vissl.hooks import CheckNanLossHook, CheckNanModelOutputHook

    cfg = compose(PAPER)
    assert cfg.HOOKS.CHECK_NAN
    kinds = [type(h) for h in pirl_hook_generator(cfg)]
    assert not {CheckNanLossHook, CheckNanModelOutputHook, LogLossMetricsCheckpointHook} & set(kinds)
    assert kinds.index(NonFiniteGuardHook) < kinds.index(GuardedCheckpointHook)
    task = SimpleNamespace(last_batch=SimpleNamespace(model_output=torch.tensor([float("nan")])))
    GuardedCheckpointHook(1).on_forward(task)  # no check, no checkpoint: the guard's job
    simclr = [type(h) for h in pirl_hook_generator(compose("config=pretrain/simclr/simclr_8node_resnet"))]
    assert {CheckNanLossHook, CheckNanModelOutputHook, LogLossMetricsCheckpointHook} <= set(simclr)


@pytest.mark.parametrize("override, match", [
    ("config.MODEL.HEAD.PARAMS.0.0.1.in_dim=512",
     r"PARAMS\[0\] \(pirl_jigsaw_head\) takes 512-d input but the trunk \(resnet\) outputs 2048"),
    ("config.MODEL.HEAD.PARAMS.1.0.1.dims=[2048,64]",
     r"PARAMS\[1\] \(mlp\) outputs 64-d embeddings but LOSS.pirl_loss.memory_bank.embedding_dim=128"),
    ("config.MODEL.TRUNK.RESNETS.WIDTH_MULTIPLIER=2", "outputs 4096-d features"),
    ("config.LOSS.pirl_loss.lambda_weight=2", r"lambda_weight=2(\.0)? must be in"),
    ("config.LOSS.pirl_loss.temperature=0", r"temperature=0(\.0)? must be > 0"),
    ("config.DATA.TRAIN.LABEL_TYPE=zero", "LABEL_TYPE='zero'"),
    ("config.DATA.TRAIN.LABEL_SOURCES=[disk_folder]", "LABEL_SOURCES=.'disk_folder'."),
    ("config.DATA.TRAIN.RANK_SPLIT=random", "RANK_SPLIT='random': use global_shuffle"),
    ("config.TRAINER.TASK_NAME=self_supervision_task",
     "RANK_SPLIT=global_shuffle needs TRAINER.TASK_NAME=pirl_self_supervision_task"),
])
def test_bad_configs_fail_before_workers_start(override, match):
    with pytest.raises(ValueError, match=match):
        validate_config(compose(PAPER, override))


def test_cpu_sync_bn_needs_the_plugins_task():
    """VISSL's task skips the conversion on CPUs without a word; the plugin's converts."""
    cfg = compose(PAPER, "config.TRAINER.TASK_NAME=self_supervision_task",
                  "config.DATA.TRAIN.RANK_SPLIT=vissl_blocks", "config.MACHINE.DEVICE=cpu",
                  "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true")
    with pytest.raises(ValueError, match="converts batch norm on GPUs only.*"
                                         "TASK_NAME=pirl_self_supervision_task"):
        validate_config(cfg)
    validate_config(compose(PAPER, "config.MACHINE.DEVICE=cpu",
                            "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true"))
    # one process: batch norm is the same synced or not (VISSL's benchmark configs convert)
    validate_config(compose(PAPER, "config.TRAINER.TASK_NAME=self_supervision_task",
                            "config.DATA.TRAIN.RANK_SPLIT=vissl_blocks", "config.MACHINE.DEVICE=cpu",
                            "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true",
                            "config.DISTRIBUTED.NUM_NODES=1", "config.DISTRIBUTED.NUM_PROC_PER_NODE=1"))


def test_batch_norm_is_synced_in_groups_that_cover_bn_min_samples():
    ranks = ["config.DISTRIBUTED.NUM_NODES=1", "config.DISTRIBUTED.NUM_PROC_PER_NODE=4"]
    paper = compose(PAPER, *ranks)
    prepare_batch_norm(paper)  # 32 per rank: per-rank batch norm, as the paper
    assert not paper.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN
    small = compose(PAPER, *ranks, "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
                    "config.MACHINE.DEVICE=cpu")
    prepare_batch_norm(small)
    assert small.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN
    assert small.MODEL.SYNC_BN_CONFIG.GROUP_SIZE == 4
    validate_config(small)
    off = compose(PAPER, *ranks, "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
                  "config.MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES=0")
    prepare_batch_norm(off)
    assert not off.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN
    own = compose(PAPER, *ranks, "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
                  "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true")
    prepare_batch_norm(own)
    assert own.MODEL.SYNC_BN_CONFIG.GROUP_SIZE == -1  # a config that converts keeps its groups
    vissl_task = compose(PAPER, *ranks, "config.DATA.TRAIN.BATCHSIZE_PER_REPLICA=8",
                         "config.MACHINE.DEVICE=cpu", "config.TRAINER.TASK_NAME=self_supervision_task")
    with pytest.raises(ValueError, match="BN_MIN_SAMPLES=32 with 8 images per rank synchronises "
                                         "batch norm in groups of 4 ranks.*BN_MIN_SAMPLES=0"):
        prepare_batch_norm(vissl_task)
    with pytest.raises(ValueError, match="BN_MIN_SAMPLES=-1 must be a whole number"):
        prepare_batch_norm(compose(PAPER, "config.MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES=-1"))


def test_a_folder_needs_only_data_paths(image_folder):
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                  "config.LOSS.pirl_loss.num_negatives=2")
    prepare_data(cfg)
    assert cfg.DATA.TRAIN.LABEL_PATHS == [str(image_folder)]
    assert cfg.DATA.TRAIN.LABEL_SOURCES == []  # labels stay the sample index


def test_missing_folder_is_reported(tmp_path):
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{tmp_path / 'nope'}]")
    with pytest.raises(ValueError, match="DATA_PATHS.0.=.*is not a folder"):
        prepare_data(cfg)


def test_num_negatives_not_below_dataset_size_is_reported(image_folder):
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]")
    with pytest.raises(ValueError, match=r"num_negatives=32000 must be smaller than the training "
                                         r"dataset, which has 4 images"):
        prepare_data(cfg)


def test_nce_on_fewer_images_or_steps_per_epoch_than_it_learns_from_is_warned(image_folder,
                                                                              tmp_path, caplog):
    small = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                    "config.LOSS.pirl_loss.num_negatives=2")
    warn_about_nce_on_a_small_dataset(small)
    assert ("loss_type=nce on 4 images at a global batch of 1024: 0 steps per epoch"
            in caplog.text)
    assert "config.LOSS.pirl_loss.loss_type=infonce" in caplog.text
    caplog.clear()
    warn_about_nce_on_a_small_dataset(compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                                              "config.LOSS.pirl_loss.num_negatives=2",
                                              "config.LOSS.pirl_loss.loss_type=infonce"))
    assert "loss_type=nce" not in caplog.text

    def filelist_run(images: int, batch_per_rank: int) -> str:
        """The warning for a file list of ``images`` on 4 ranks of ``batch_per_rank``."""
        filelist = tmp_path / f"images_{images}.npy"
        np.save(filelist, np.zeros(images, dtype="U1"))
        caplog.clear()
        warn_about_nce_on_a_small_dataset(compose(
            PAPER, "config.DATA.TRAIN.DATA_SOURCES=[disk_filelist]",
            f"config.DATA.TRAIN.DATA_PATHS=[{filelist}]", "config.LOSS.pirl_loss.num_negatives=2",
            f"config.DATA.TRAIN.BATCHSIZE_PER_REPLICA={batch_per_rank}",
            "config.DISTRIBUTED.NUM_NODES=1", "config.DISTRIBUTED.NUM_PROC_PER_NODE=4"))
        return caplog.text

    # YFCC-1M at 1024: 976 steps per epoch
    assert "loss_type=nce" not in filelist_run(1_000_000, 256)
    # as many steps per epoch on fewer images (measured diverging at 1,005 on 8,040)
    assert "loss_type=nce on 3904 images at a global batch of 4: 976 steps" in filelist_run(3904, 1)
    # 1M images in fewer steps per epoch than known to learn
    assert "loss_type=nce on 1000000 images at a global batch of 2048: 488 steps" in filelist_run(
        1_000_000, 512)


def test_resuming_a_bank_sized_for_another_dataset_is_reported(image_folder, tmp_path):
    import torch

    checkpoints = tmp_path / "ckpt"
    checkpoints.mkdir()
    torch.save({"loss": {"memory_bank.embeddings": torch.zeros(10, 128)}},
               checkpoints / "model_phase0.torch")
    (checkpoints / "checkpoint.torch").symlink_to(checkpoints / "model_phase0.torch")
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                  "config.LOSS.pirl_loss.num_negatives=2", f"config.CHECKPOINT.DIR={checkpoints}")
    with pytest.raises(ValueError, match=r"memory bank of 10 entries but the training dataset has "
                                         r"4 images"):
        prepare_data(cfg)


def test_queue_dataset_is_refused():
    with pytest.raises(ValueError, match="ENABLE_QUEUE_DATASET=True"):
        validate_config(compose(PAPER, "config.DATA.TRAIN.ENABLE_QUEUE_DATASET=true"))


def test_multi_node_launch_without_run_id_names_the_fix(image_folder, monkeypatch):
    """The paper config has RUN_ID auto, which VISSL allows on one node only (an assert)."""
    monkeypatch.setattr(distributed_launcher, "launch_distributed",
                        lambda **kwargs: pytest.fail("launched without a rendezvous address"))
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                  "config.LOSS.pirl_loss.num_negatives=2")
    with pytest.raises(ValueError, match=r"RUN_ID='auto' works on one node only, but "
                                         r"DISTRIBUTED.NUM_NODES=4.*config.DISTRIBUTED.RUN_ID="
                                         r"<host of node 0>:<free port>"):
        launcher.launch(cfg)


def test_multi_node_launch_with_run_id_starts(image_folder, monkeypatch):
    seen = {}
    monkeypatch.setattr(distributed_launcher, "launch_distributed",
                        lambda **kwargs: seen.update(kwargs))
    cfg = compose(PAPER, f"config.DATA.TRAIN.DATA_PATHS=[{image_folder}]",
                  "config.LOSS.pirl_loss.num_negatives=2",
                  "config.DISTRIBUTED.RUN_ID=node0.cluster:29500")
    launcher.launch(cfg, node_id=2)
    assert seen["node_id"] == 2 and seen["cfg"].DISTRIBUTED.RUN_ID == "node0.cluster:29500"


def test_composing_vissls_config_makes_spawned_workers_import_the_plugin():
    """VISSL's launcher spawns workers with torch.multiprocessing.spawn(_distributed_worker):
    pickled by reference to the plugin's module, unpickling it in a worker imports the plugin."""
    import pickle

    from vissl_pirl_plugin.engine import registration

    compose(PAPER)
    worker = distributed_launcher._distributed_worker
    assert worker.__module__ == "vissl_pirl_plugin.engine.registration"
    assert pickle.loads(pickle.dumps(worker)) is registration.distributed_worker


@pytest.mark.parametrize("config", ["pirl_jigsaw_4node_resnet50", "pirl_rotation_4node_resnet50",
                                    "npid_plusplus_4node_resnet50"])
def test_on_device_hands_the_train_step_the_decoded_images(config):
    cfg = compose(f"config=pretrain/pirl/{config}", "+config/pretrain/pirl/augmentation=on_device")
    assert cfg.TRAINER.TRAIN_STEP_NAME == DEVICE_STEP
    prepare_augmentation(cfg)
    assert cfg.DATA.TRAIN.TRANSFORMS[0]["on_device"] is True
    assert cfg.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.canvas_side == 512  # max_image_side
    validate_config(cfg)


def test_on_device_pads_the_canvas_to_max_image_side():
    on_device = "+config/pretrain/pirl/augmentation=on_device"
    cfg = compose(PAPER, on_device, "+config.DATA.TRAIN.TRANSFORMS.0.max_image_side=300")
    prepare_augmentation(cfg)
    assert cfg.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.canvas_side == 300
    cfg = compose(PAPER, on_device, "+config.DATA.TRAIN.COLLATE_FUNCTION_PARAMS.canvas_side=256")
    with pytest.raises(ValueError, match=r"canvas_side=256 is smaller than the first "
                                         r"transform's max_image_side=512"):
        prepare_augmentation(cfg)


@pytest.mark.parametrize("overrides, match", [
    (["+config.DATA.TRAIN.TRANSFORMS.0.on_device=true"],
     "on_device=true hands the train step decoded images, which "
     "TRAINER.TRAIN_STEP_NAME=standard_train_step cannot train on"),
    ([f"config.TRAINER.TRAIN_STEP_NAME={DEVICE_STEP}",
      "config.DATA.TRAIN.TRANSFORMS=[{name:RandomResizedCrop,size:224}]"],
     r"must be one ImgPilToPirlJigsaw or ImgPilToPirlPair, not \['RandomResizedCrop'\]"),
])
def test_the_device_step_and_the_flag_go_together(overrides, match):
    with pytest.raises(ValueError, match=match):
        prepare_augmentation(compose(PAPER, *overrides))


@pytest.mark.parametrize("value, compiled", [("auto", None), ("true", True), ("false", False)])
def test_the_device_augmentation_compiles_as_its_key_says(value, compiled):
    cfg = compose(PAPER, "+config/pretrain/pirl/augmentation=on_device",
                  f"config.DATA.TRAIN.DEVICE_AUGMENTATION.COMPILE={value}")
    prepare_augmentation(cfg)
    assert device_augmentation(cfg).compile is compiled


def test_a_bad_device_augmentation_compile_value_is_refused():
    cfg = compose(PAPER, "+config/pretrain/pirl/augmentation=on_device",
                  "config.DATA.TRAIN.DEVICE_AUGMENTATION.COMPILE=always")
    with pytest.raises(ValueError, match="DEVICE_AUGMENTATION.COMPILE='always': use auto"):
        prepare_augmentation(cfg)


def test_a_pretext_without_a_batched_version_is_refused_before_launch():
    cfg = compose("config=pretrain/pirl/pirl_jigsaw_rotation_4node_resnet50",
                  "+config/pretrain/pirl/augmentation=on_device")
    prepare_augmentation(cfg)
    with pytest.raises(ValueError, match="RotationJigsawPretext has no batched version"):
        validate_config(cfg)
