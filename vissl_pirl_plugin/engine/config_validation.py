"""Preparation and checks of a PIRL config, run in the launcher before any worker starts.

Each failure is one ``ValueError`` naming the offending key, its value and the
fix. Checks that need the dataset (its size against ``num_negatives``, indices
against the bank) run when the loss is built and on each step.
"""
import logging
import os
from typing import List, Optional

import numpy as np
import torchvision.transforms
from classy_vision.dataset.transforms import TRANSFORM_REGISTRY, TRANSFORM_VIDEO
from vissl.config import AttrDict
from vissl.utils.checkpoint import get_checkpoint_folder, get_resume_checkpoint
from vissl.utils.misc import is_apex_available

from vissl_pirl_plugin.data.global_shuffle_sampler import GLOBAL_SHUFFLE, RANK_SPLITS, VISSL_BLOCKS
from vissl_pirl_plugin.data.image_folder import folder_image_count
from vissl_pirl_plugin.engine.checkpoint_loading import load_checkpoint_safely
from vissl_pirl_plugin.engine.device_augmentation_train_step import TRAIN_STEP_NAME as DEVICE_STEP
from vissl_pirl_plugin.engine.device_augmentation_train_step import augmentation_compile
from vissl_pirl_plugin.engine.pirl_task import TASK_NAME as PIRL_TASK
from vissl_pirl_plugin.hooks.hook_generator import KEEP_ITER_CHECKPOINTS
from vissl_pirl_plugin.hooks.model_compile_hook import compile_settings
from vissl_pirl_plugin.losses.memory_bank import BANK_INITS
from vissl_pirl_plugin.models.batch_norm_groups import sync_group_size
from vissl_pirl_plugin.losses.pirl_loss import check_loss_params
from vissl_pirl_plugin.data.transforms.pirl_pair_transform import (
    DEFAULT_MAX_IMAGE_SIDE,
    ImgPilToPirlPair,
)
from vissl_pirl_plugin.models.resnet_small_trunk import small_resnet_depth_and_width

# output dimension of VISSL's ResNet trunk ("flatten" / res5) per unit of width
RESNET_BOTTLENECK_DIM = 2048


def prepare_augmentation(cfg: AttrDict) -> None:
    """``TRAINER.TRAIN_STEP_NAME=pirl_device_augmentation_train_step``
    (``+config/pretrain/pirl/augmentation=on_device``) turns the first training transform's
    ``on_device`` on, so that its loader workers hand the step the decoded images, and pads
    every batch's canvas to the transform's ``max_image_side`` (``pirl_collator``'s
    ``canvas_side``: one shape every step); the step and the flag go together, and a lone flag
    is refused."""
    step, transforms = cfg.TRAINER.TRAIN_STEP_NAME, cfg.DATA.TRAIN.TRANSFORMS
    first = transforms[0] if len(transforms) > 0 else {"name": None}
    pair = issubclass(TRANSFORM_REGISTRY.get(first["name"], object), ImgPilToPirlPair)
    if step == DEVICE_STEP:
        if not pair or len(transforms) > 1:
            raise ValueError(
                f"TRAINER.TRAIN_STEP_NAME={DEVICE_STEP} makes PIRL's views on the training device "
                "from the first transform's arguments, so DATA.TRAIN.TRANSFORMS must be one "
                f"ImgPilToPirlJigsaw or ImgPilToPirlPair, not {[t['name'] for t in transforms]}. "
                "Drop +config/pretrain/pirl/augmentation=on_device for other transforms.")
        first["on_device"] = True
        augmentation_compile(cfg.DATA.TRAIN)
        side = first.get("max_image_side", DEFAULT_MAX_IMAGE_SIDE)
        collate = cfg.DATA.TRAIN.COLLATE_FUNCTION_PARAMS
        if collate.get("canvas_side") is None:
            collate["canvas_side"] = side
        elif side is not None and collate["canvas_side"] < side:
            raise ValueError(
                f"DATA.TRAIN.COLLATE_FUNCTION_PARAMS.canvas_side={collate['canvas_side']} is "
                f"smaller than the first transform's max_image_side={side}: a larger image would "
                "not fit the canvas. Leave canvas_side out (the launcher sets it to "
                "max_image_side) or raise it.")
    elif pair and first.get("on_device", False):
        raise ValueError(
            f"DATA.TRAIN.TRANSFORMS[0].on_device=true hands the train step decoded images, which "
            f"TRAINER.TRAIN_STEP_NAME={step} cannot train on. Use "
            "+config/pretrain/pirl/augmentation=on_device (it sets "
            f"TRAINER.TRAIN_STEP_NAME={DEVICE_STEP}), or on_device: false.")


def world_size(distributed: AttrDict) -> int:
    """The ranks of a run: ``DISTRIBUTED.NUM_NODES`` times ``NUM_PROC_PER_NODE``."""
    return distributed.NUM_NODES * distributed.NUM_PROC_PER_NODE


def prepare_batch_norm(cfg: AttrDict) -> None:
    """``MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES`` (32 in the PIRL configs, 0 or absent: off): when a
    rank's batch is smaller, batch norm is synchronised in groups of ranks that together hold at
    least that many images (``models/batch_norm_groups.py``), by setting VISSL's
    ``CONVERT_BN_TO_SYNC_BN`` and ``GROUP_SIZE``. A config that converts already keeps its own
    ``GROUP_SIZE``."""
    sync_bn = cfg.MODEL.SYNC_BN_CONFIG
    min_samples = sync_bn.get("BN_MIN_SAMPLES", 0)
    if not isinstance(min_samples, int) or isinstance(min_samples, bool) or min_samples < 0:
        raise ValueError(
            f"MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES={min_samples!r} must be a whole number >= 0 "
            "(the fewest images a batch norm's statistics cover; 0: per-rank batch norm). Set "
            "e.g. config.MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES=32.")
    if sync_bn.CONVERT_BN_TO_SYNC_BN:
        return
    per_replica = cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA
    group = sync_group_size(per_replica, world_size(cfg.DISTRIBUTED), min_samples)
    if group == 1:
        return
    if cfg.MACHINE.DEVICE == "cpu" and cfg.TRAINER.TASK_NAME != PIRL_TASK:
        raise ValueError(
            f"MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES={min_samples} with {per_replica} images per rank "
            f"synchronises batch norm in groups of {group} ranks, which VISSL's "
            f"{cfg.TRAINER.TASK_NAME} does on GPUs only. Set "
            f"config.TRAINER.TASK_NAME={PIRL_TASK}, or "
            "config.MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES=0 for per-rank batch norm.")
    sync_bn.CONVERT_BN_TO_SYNC_BN = True
    sync_bn.GROUP_SIZE = group
    logging.info(f"Batch norm synchronised in groups of {group} ranks ({per_replica} images per "
                 f"rank, MODEL.SYNC_BN_CONFIG.BN_MIN_SAMPLES={min_samples}).")


def validate_config(cfg: AttrDict) -> None:
    """Validates the training transforms, the absence of apex, ``MODEL.COMPILE`` and, with
    ``pirl_loss``, the PIRL settings."""
    validate_transforms(cfg.DATA.TRAIN.TRANSFORMS)
    validate_no_apex(cfg.MODEL)
    validate_task(cfg)
    compile_settings(cfg.MODEL)
    validate_checkpoint_pruning(cfg.CHECKPOINT)
    if cfg.LOSS.name != "pirl_loss":
        return
    if "pirl_loss" not in cfg.LOSS:
        raise ValueError("LOSS.name=pirl_loss but the config has no LOSS.pirl_loss section. "
                         "Start from config=pretrain/pirl/pirl_jigsaw_4node_resnet50.")
    loss = cfg.LOSS.pirl_loss
    check_loss_params(loss.lambda_weight, loss.temperature, loss.num_negatives, loss.loss_type,
                      loss.negative_sampling, num_train_samples=None)
    train = cfg.DATA.TRAIN
    if train.LABEL_TYPE != "sample_index":
        raise ValueError(
            f"DATA.TRAIN.LABEL_TYPE={train.LABEL_TYPE!r}: pirl_loss indexes its memory "
            "bank by dataset index. Set config.DATA.TRAIN.LABEL_TYPE=sample_index.")
    if train.ENABLE_QUEUE_DATASET:
        raise ValueError(
            "DATA.TRAIN.ENABLE_QUEUE_DATASET=True replaces an unreadable image by another image "
            "under the same index, which would write that other image into the memory bank. Set "
            "config.DATA.TRAIN.ENABLE_QUEUE_DATASET=false: unreadable images are left out instead.")
    if len(train.LABEL_SOURCES) > 0:
        raise ValueError(
            f"DATA.TRAIN.LABEL_SOURCES={list(train.LABEL_SOURCES)}: with label sources VISSL "
            "replaces the sample index by class labels, and pirl_loss would index its memory bank "
            "by class. Set config.DATA.TRAIN.LABEL_SOURCES=[] (a folder needs only DATA_PATHS).")
    init = loss.memory_bank.get("init", "unit")
    if init not in BANK_INITS:
        raise ValueError(f"LOSS.pirl_loss.memory_bank.init={init!r}: use one of {BANK_INITS} "
                         "(unit: the same unit rows on every rank; vissl_rank_mean: VISSL 0.1.6's "
                         "start, see docs/training.md).")
    _validate_heads(cfg, loss.memory_bank.embedding_dim)


def validate_no_apex(model: AttrDict) -> None:
    """SyncBN and AMP through apex fail at model build (NameError) or at the first AMP step when
    apex is not installed: the shipped configs use PyTorch's."""
    sync_bn, amp = model.SYNC_BN_CONFIG, model.AMP_PARAMS
    uses = {"SYNC_BN_CONFIG.SYNC_BN_TYPE": sync_bn.CONVERT_BN_TO_SYNC_BN and sync_bn.SYNC_BN_TYPE,
            "AMP_PARAMS.AMP_TYPE": amp.USE_AMP and amp.AMP_TYPE}
    for key, value in uses.items():
        if value == "apex" and not is_apex_available():
            raise ValueError(f"MODEL.{key}=apex but apex is not installed. Use PyTorch's: "
                             f"config.MODEL.{key}=pytorch.")


def validate_task(cfg: AttrDict) -> None:
    """``DATA.TRAIN.RANK_SPLIT`` names a split, and what only ``pirl_self_supervision_task`` does
    (a split other than VISSL's, batch norm across CPU ranks) is not asked of VISSL's task, which
    would ignore it without a word (with one process, batch norm is the same synced or not: VISSL's
    benchmark configs, which convert, run on one CPU process as they are)."""
    split = cfg.DATA.TRAIN.get("RANK_SPLIT", VISSL_BLOCKS)
    if split not in RANK_SPLITS:
        raise ValueError(f"DATA.TRAIN.RANK_SPLIT={split!r}: use {GLOBAL_SHUFFLE} (a fresh "
                         f"permutation of the whole dataset every epoch, split across the ranks) "
                         f"or {VISSL_BLOCKS} (VISSL 0.1.6's fixed per-rank blocks).")
    if cfg.TRAINER.TASK_NAME == PIRL_TASK:
        return
    if split == GLOBAL_SHUFFLE:
        raise ValueError(
            f"DATA.TRAIN.RANK_SPLIT={GLOBAL_SHUFFLE} needs TRAINER.TASK_NAME={PIRL_TASK} (VISSL's "
            f"{cfg.TRAINER.TASK_NAME} would keep its fixed per-rank blocks). Set "
            f"config.TRAINER.TASK_NAME={PIRL_TASK}, or config.DATA.TRAIN.RANK_SPLIT={VISSL_BLOCKS}.")
    ranks = world_size(cfg.DISTRIBUTED)
    if cfg.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN and cfg.MACHINE.DEVICE == "cpu" and ranks > 1:
        raise ValueError(
            f"MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=true with MACHINE.DEVICE=cpu on {ranks} "
            f"ranks: VISSL's {cfg.TRAINER.TASK_NAME} converts batch norm on GPUs only and would "
            f"keep it per rank. Set config.TRAINER.TASK_NAME={PIRL_TASK}, or "
            "config.MODEL.SYNC_BN_CONFIG.CONVERT_BN_TO_SYNC_BN=false for per-rank batch norm.")


def validate_checkpoint_pruning(checkpoint: AttrDict) -> None:
    """``CHECKPOINT.KEEP_LAST_ITER_CHECKPOINTS`` (``CheckpointPruningHook``): -1 or N >= 1."""
    keep = checkpoint.get(KEEP_ITER_CHECKPOINTS, -1)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep == 0 or keep < -1:
        raise ValueError(
            f"CHECKPOINT.{KEEP_ITER_CHECKPOINTS}={keep!r}: keep N >= 1 iteration checkpoints "
            f"(e.g. config.CHECKPOINT.{KEEP_ITER_CHECKPOINTS}=2), or -1 to keep them all.")


def validate_rendezvous(distributed: AttrDict) -> None:
    """A multi-node launch needs the address where the nodes meet: VISSL picks a free local
    port for ``RUN_ID: auto`` and asserts on more than one node (``get_dist_run_id``)."""
    if (distributed.NUM_NODES > 1 and distributed.INIT_METHOD == "tcp"
            and distributed.RUN_ID in ("auto", "")):
        raise ValueError(
            f"DISTRIBUTED.RUN_ID={distributed.RUN_ID!r} works on one node only, but "
            f"DISTRIBUTED.NUM_NODES={distributed.NUM_NODES}: every node must be given the same "
            "address to meet at. Add config.DISTRIBUTED.RUN_ID=<host of node 0>:<free port> "
            "(e.g. node0.cluster:29500) to the command of every node, or set "
            "config.SLURM.USE_SLURM=true on SLURM, where the launcher sets it.")


def prepare_data(cfg: AttrDict) -> None:
    """Data checks that need the dataset on this machine; fills ``LABEL_PATHS`` for folders.

    * ``DATA.TRAIN.DATA_PATHS=[/a/folder]`` alone is enough to train on a folder:
      VISSL 0.1.6 ships no dataset catalog and looks the dataset name up (a
      KeyError) unless ``LABEL_PATHS`` is set, so for a ``disk_folder`` source
      without one it is set to the data path. With ``LABEL_SOURCES`` empty VISSL
      never reads labels from it and the sample index stays the label.
    * A missing folder, ``num_negatives`` >= the dataset size, and a resumed
      checkpoint whose memory bank was sized for another dataset are reported here.
    """
    train = cfg.DATA.TRAIN
    for index, (source, path) in enumerate(zip(train.DATA_SOURCES, train.DATA_PATHS)):
        if source == "disk_folder" and not os.path.isdir(path):
            raise ValueError(
                f"DATA.TRAIN.DATA_PATHS[{index}]={path!r} is not a folder. Point "
                "config.DATA.TRAIN.DATA_PATHS at a folder of images (sub-folders allowed).")
    if len(train.DATA_PATHS) > 0 and len(train.LABEL_PATHS) == 0 and len(train.LABEL_SOURCES) == 0:
        train.LABEL_PATHS = list(train.DATA_PATHS)
    if cfg.LOSS.name != "pirl_loss":
        return
    size = train_dataset_size(cfg)
    if size is None:
        return
    num_negatives = cfg.LOSS.pirl_loss.num_negatives
    if num_negatives >= size:
        raise ValueError(
            f"LOSS.pirl_loss.num_negatives={num_negatives} must be smaller than the training "
            f"dataset, which has {size} images ({list(train.DATA_PATHS)}). Lower it, e.g. "
            f"config.LOSS.pirl_loss.num_negatives={max(1, size // 2)}.")
    _check_resumed_bank(cfg, size)


# Where the paper's NCE is known to learn: 1M images or more (YFCC-1M, the paper's Section 4, and
# ImageNet's 1.28M), at 976 steps per epoch or more (|D| / global batch: how often a memory-bank
# row is rewritten; YFCC-1M at 1024). What was measured below them: the warning's text and
# docs/training.md#nce-or-infonce-for-my-dataset.
NCE_KNOWN_TO_LEARN_IMAGES = 1_000_000
NCE_KNOWN_TO_LEARN_STEPS_PER_EPOCH = NCE_KNOWN_TO_LEARN_IMAGES // 1024


def warn_about_nce_on_a_small_dataset(cfg: AttrDict) -> None:
    """A warning, once every check has passed and the run goes ahead, when the paper's NCE is
    asked for on fewer images or steps per epoch than it is known to learn from (InfoNCE is the
    loss for smaller datasets: docs/training.md)."""
    if cfg.LOSS.name != "pirl_loss" or cfg.LOSS.pirl_loss.loss_type != "nce":
        return
    size = train_dataset_size(cfg)
    if size is None:
        return
    batch = cfg.DATA.TRAIN.BATCHSIZE_PER_REPLICA * world_size(cfg.DISTRIBUTED)
    steps = size // batch
    if size < NCE_KNOWN_TO_LEARN_IMAGES or steps < NCE_KNOWN_TO_LEARN_STEPS_PER_EPOCH:
        logging.warning(
            f"LOSS.pirl_loss.loss_type=nce on {size} images at a global batch of {batch}: "
            f"{steps} steps per epoch. The paper's NCE is known to learn from "
            f"{NCE_KNOWN_TO_LEARN_IMAGES:,} images at {NCE_KNOWN_TO_LEARN_STEPS_PER_EPOCH} steps "
            "per epoch (YFCC-1M at 1024), and its loss rose epoch over epoch on every smaller set "
            "measured, up to 8,040 images at 1,005 steps per epoch; use "
            "config.LOSS.pirl_loss.loss_type=infonce (docs/training.md, 'NCE or InfoNCE for my "
            "dataset?').")


def train_dataset_size(cfg: AttrDict) -> Optional[int]:
    """Images VISSL will see for ``disk_folder`` / ``disk_filelist`` sources, else None."""
    train = cfg.DATA.TRAIN
    if len(train.DATA_SOURCES) != 1 or len(train.DATA_PATHS) != 1:
        return None
    source, path = train.DATA_SOURCES[0], train.DATA_PATHS[0]
    if source == "disk_folder":
        size = folder_image_count(path)
    elif source == "disk_filelist":
        size = len(np.load(path, mmap_mode="r"))
    else:
        return None
    return min(size, train.DATA_LIMIT) if train.DATA_LIMIT > 0 else size


def resume_checkpoint(cfg: AttrDict) -> Optional[str]:
    """The checkpoint VISSL's ``launch_distributed`` will resume from, if any (same rules)."""
    folder = get_checkpoint_folder(cfg)
    link = os.path.join(folder, "checkpoint.torch")
    if cfg.CHECKPOINT.USE_SYMLINK_CHECKPOINT_FOR_RESUME and os.path.exists(link):
        return link
    path = get_resume_checkpoint(cfg, checkpoint_folder=folder)
    return path if path is not None and os.path.isfile(path) else None


def _check_resumed_bank(cfg: AttrDict, size: int) -> None:
    checkpoint = resume_checkpoint(cfg) if cfg.CHECKPOINT.AUTO_RESUME else None
    if checkpoint is None:
        return
    state = load_checkpoint_safely(checkpoint, mmap=True)
    bank = state.get("loss", {}).get("memory_bank.embeddings")
    if bank is not None and bank.shape[0] != size:
        raise ValueError(
            f"CHECKPOINT.DIR={cfg.CHECKPOINT.DIR!r}: the checkpoint to resume, {checkpoint}, holds a "
            f"memory bank of {bank.shape[0]} entries but the training dataset has {size} images. "
            "Resume with the dataset it was trained on, or start a new run in another "
            "config.CHECKPOINT.DIR.")


def validate_transforms(transforms: List[dict]) -> None:
    """Unknown transform names, and bad arguments of the PIRL transforms, fail here.

    The PIRL pair transforms are built once, which also imports a user's pretext
    module and generates a fixed permutation set, so their errors surface before
    any worker starts.
    """
    for index, transform in enumerate(transforms):
        name = transform["name"]
        if "transform_type" in transform:  # e.g. augly, built by VISSL's own wrapper
            continue
        known = name in TRANSFORM_REGISTRY or name in TRANSFORM_VIDEO
        if not known and not hasattr(torchvision.transforms, name):
            raise ValueError(
                f"DATA.TRAIN.TRANSFORMS[{index}].name={name!r} is not a registered transform. "
                "PIRL's are ImgPilToPirlJigsaw and ImgPilToPirlPair; a transform of your own must "
                "be registered with classy_vision's @register_transform in an imported module.")
        if issubclass(TRANSFORM_REGISTRY.get(name, object), ImgPilToPirlPair):
            try:
                TRANSFORM_REGISTRY[name].from_config(dict(transform))
            except (TypeError, ValueError, ImportError) as error:
                raise ValueError(f"DATA.TRAIN.TRANSFORMS[{index}] ({name}): {error}") from error


def _validate_heads(cfg: AttrDict, embedding_dim: int) -> None:
    trunk_dim = trunk_output_dim(cfg.MODEL.TRUNK)
    heads = cfg.MODEL.HEAD.PARAMS
    if len(cfg.MODEL.MULTI_INPUT_HEAD_MAPPING) == 0:
        heads = [heads]  # a single-input model has one head: a list of layers
    for head_index, head in enumerate(heads):
        in_dim, out_dim = _head_dims(head)
        key = f"MODEL.HEAD.PARAMS[{head_index}]"
        if trunk_dim is not None and in_dim is not None and in_dim != trunk_dim:
            raise ValueError(
                f"{key} ({head[0][0]}) takes {in_dim}-d input but the trunk "
                f"({cfg.MODEL.TRUNK.NAME}) outputs {trunk_dim}-d features. Set the head's input "
                f"dimension to {trunk_dim}.")
        if out_dim is not None and out_dim != embedding_dim:
            raise ValueError(
                f"{key} ({head[-1][0]}) outputs {out_dim}-d embeddings but "
                f"LOSS.pirl_loss.memory_bank.embedding_dim={embedding_dim}. Make them equal.")


def trunk_output_dim(trunk: AttrDict) -> Optional[int]:
    """Feature dimension of VISSL's ResNet and the plugin's resnet_small; None for others."""
    if trunk.NAME == "resnet":
        return RESNET_BOTTLENECK_DIM * int(trunk.RESNETS.WIDTH_MULTIPLIER)
    if trunk.NAME == "resnet_small":
        return 8 * small_resnet_depth_and_width(trunk)[1]
    return None


def _head_dims(head: List) -> tuple:
    """``(input dim, output dim)`` of a head given as ``[[name, params], ...]``."""
    return _layer_dims(head[0])[0], _layer_dims(head[-1])[1]


def _layer_dims(layer: List) -> tuple:
    name, params = layer[0], layer[1] if len(layer) > 1 else {}
    if name == "mlp":
        return params["dims"][0], params["dims"][-1]
    if name == "pirl_jigsaw_head":
        return params.get("in_dim", 2048), params.get("out_dim", 128)
    return None, None
