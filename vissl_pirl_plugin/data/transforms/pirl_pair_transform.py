"""``ImgPilToPirlPair``: a dataset image -> the pair ``[I, I^t]`` PIRL trains on (paper §2, App. A).

``I`` is "a 224 x 224 image obtained by applying standard data augmentation
(flip, random resized crop, color jitter, hue, contrast, saturation)": a random resized crop,
then the authors' per-crop recipe (``crop_augmentation.py``: colour jitter, PIL photometric ops
with p = 0.66, grayscale with p = 0.2, flip). ``I^t``
comes from a registered pretext transform (``pretext.py``): ``jigsaw``,
``rotation``, ``rotation_jigsaw`` or one of the user's. With ``pretext: null``
only ``I`` is returned (NPID / NPID++). Both are returned as normalised float
tensors for ``pirl_collator``; the sample-index label is left untouched.

The paper gives no jitter strengths; brightness, contrast, saturation 0.4 and
hue 0.2 are those of the authors' released config.

``on_device: true`` (set by ``+config/pretrain/pirl/augmentation=on_device``) splits the
transform: in the loader workers it only returns the image's uint8 pixels, their longer side
capped at ``max_image_side`` (512 by default, at most 2048: a bilinear, antialiased shrink of
larger images, which bounds the batch's canvas on the device), and the
train step ``pirl_device_augmentation_train_step`` makes ``[I, I^t]`` for the whole batch on the
training device with these same arguments (``batched/pirl_augmentation.py``).
"""
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from classy_vision.dataset.transforms import register_transform
from classy_vision.dataset.transforms.classy_transform import ClassyTransform
from PIL import Image

from vissl_pirl_plugin.data.image_utils import capped, to_rgb_uint8
from vissl_pirl_plugin.data.transforms.per_image.crop_augmentation import CropAugmentation
from vissl_pirl_plugin.data.transforms.common.normalization import NormalizedFloat
from vissl_pirl_plugin.data.transforms.jigsaw_pretext import JigsawPretext
from vissl_pirl_plugin.data.transforms.pretext import build_pretext
from vissl_pirl_plugin.data.transforms.per_image.resized_crop import RandomResizedCrop
from vissl_pirl_plugin.data.transforms.rotation_pretext import RotationPretext

MAX_DEVICE_SIDE = 2048  # bounds the device path's canvas: 32 x 2048 x 2048 x 3 bytes
DEFAULT_MAX_IMAGE_SIDE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the pretexts with a batched version on the training device (batched/pirl_augmentation.py)
DEVICE_PRETEXTS = (JigsawPretext, RotationPretext)


def check_device_pretext(pretext: Optional[object]) -> None:
    """Refuses a pretext without a batched version on the training device."""
    if pretext is not None and type(pretext) not in DEVICE_PRETEXTS:
        raise ValueError(
            f"on_device: the pretext {type(pretext).__name__} has no batched version on the "
            "training device (jigsaw, rotation and none have). Drop on_device (and "
            "+config/pretrain/pirl/augmentation=on_device) to run it in the loader workers.")


@register_transform("ImgPilToPirlPair")
class ImgPilToPirlPair(ClassyTransform):
    """PIL image -> ``[I (3, 224, 224), I^t]`` (or ``[I]`` without a pretext)."""

    def __init__(self, pretext: Optional[Dict[str, Any]] = None, image_crop_size: int = 224,
                 image_crop_scale: Sequence[float] = (0.08, 1.0),
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 on_device: bool = False,
                 max_image_side: Optional[int] = DEFAULT_MAX_IMAGE_SIDE,
                 **augmentation: Any) -> None:
        """``augmentation``: ``CropAugmentation``'s arguments for ``I`` (``color_jitter``,
        ``jitter_p``, ``photometric_p``, ``grayscale_p``, ``blur_p``, ``blur_sigma``,
        ``flip_p``)."""
        if max_image_side is not None and int(max_image_side) < 1:
            raise ValueError(f"max_image_side={max_image_side} must be a positive number of "
                             "pixels, or null for no cap.")
        if on_device and (max_image_side is None or int(max_image_side) > MAX_DEVICE_SIDE):
            raise ValueError(
                f"on_device with max_image_side={max_image_side}: the batch's canvas and its "
                "resize matrices grow with the largest image (one 4000 x 3000 photograph makes a "
                f"batch of 32 need about 14 GB on the GPU). Use max_image_side <= {MAX_DEVICE_SIDE}"
                " (512 by default).")
        self.crop = RandomResizedCrop(image_crop_size, image_crop_scale)
        self.augment = CropAugmentation(**augmentation)
        self.pretext = None if pretext is None else build_pretext(pretext)
        self.normalize = NormalizedFloat(mean, std)
        self.on_device = bool(on_device)
        self.max_image_side = None if max_image_side is None else int(max_image_side)
        if self.on_device:
            check_device_pretext(self.pretext)

    def __call__(self, image: Image.Image) -> Union[torch.Tensor, List[torch.Tensor]]:
        """``[I, I^t]`` (or ``[I]``); with ``on_device`` the capped uint8 ``(3, H, W)`` pixels."""
        if self.on_device:
            return capped(to_rgb_uint8(image), self.max_image_side)
        pixels = to_rgb_uint8(image)
        views = [self.augment(self.crop(pixels))]
        if self.pretext is not None:
            views.append(self.pretext(pixels))
        return [self.normalize(view) for view in views]

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "ImgPilToPirlPair":
        return cls(**{k: v for k, v in config.items() if k not in ("name", "indices")})
