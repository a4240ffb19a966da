"""Preparation and checks of a PIRL config, run in the launcher before any worker starts.

Each failure is one ``ValueError`` naming the offending key, its value and the
fix. Checks that need the dataset (its size against ``num_negatives``, indices
against the bank) run when the loss is built and on each step.
"""
import os
from typing import List, Optional

import torchvision.transforms
from classy_vision.dataset.transforms import TRANSFORM_REGISTRY, TRANSFORM_VIDEO
from vissl.config import AttrDict

from vissl_pirl_plugin.pirl_loss import check_loss_params
from vissl_pirl_plugin.pirl_pair_transform import ImgPilToPirlPair

# output dimension of VISSL's ResNet trunk ("flatten" / res5) per unit of width
RESNET_BOTTLENECK_DIM = 2048


def validate_config(cfg: AttrDict) -> None:
    """Validates the training transforms and, with ``pirl_loss``, the PIRL settings."""
    validate_transforms(cfg.DATA.TRAIN.TRANSFORMS)
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
    if len(train.LABEL_SOURCES) > 0:
        raise ValueError(
            f"DATA.TRAIN.LABEL_SOURCES={list(train.LABEL_SOURCES)}: with label sources VISSL "
            "replaces the sample index by class labels, and pirl_loss would index its memory bank "
            "by class. Set config.DATA.TRAIN.LABEL_SOURCES=[] (a folder needs only DATA_PATHS).")
    _validate_heads(cfg, loss.memory_bank.embedding_dim)


def use_image_folders(cfg: AttrDict) -> None:
    """Lets ``DATA.TRAIN.DATA_PATHS=[/a/folder]`` alone train on a folder of images.

    VISSL 0.1.6 ships no dataset catalog, so it looks the dataset name up (and
    fails with a KeyError) unless ``LABEL_PATHS`` is also set. For a
    ``disk_folder`` source with a path and no label path, the label path is set
    to the data path: with ``LABEL_SOURCES`` empty VISSL never reads labels from
    it and the sample index stays the label. A missing folder is reported here.
    """
    train = cfg.DATA.TRAIN
    for index, (source, path) in enumerate(zip(train.DATA_SOURCES, train.DATA_PATHS)):
        if source == "disk_folder" and not os.path.isdir(path):
            raise ValueError(
                f"DATA.TRAIN.DATA_PATHS[{index}]={path!r} is not a folder. Point "
                "config.DATA.TRAIN.DATA_PATHS at a folder of images (sub-folders allowed).")
    if len(train.DATA_PATHS) > 0 and len(train.LABEL_PATHS) == 0 and len(train.LABEL_SOURCES) == 0:
        train.LABEL_PATHS = list(train.DATA_PATHS)


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
    """Feature dimension of VISSL's ResNet trunk; None for trunks it does not know."""
    if trunk.NAME != "resnet":
        return None
    return RESNET_BOTTLENECK_DIM * int(trunk.RESNETS.WIDTH_MULTIPLIER)


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
