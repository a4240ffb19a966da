"""The PIRL-Jigsaw data transform, registered as ``ImgPilToPirlJigsaw`` (paper Appendix A.1).

From one dataset image ``I`` it makes the pair PIRL trains on:

* ``I`` itself: "a 224 x 224 image obtained by applying standard data augmentation
  (flip, random resized crop, color jitter, hue, contrast, saturation)";
* ``I^t``: "a random resized crop that occupies at least 60% of the image",
  resized to 255 x 255, cut into a 3 x 3 grid with one random 64 x 64 patch per
  cell (``jigsaw.py``), the patches shuffled by a random permutation of all
  9! orders, and photometric augmentation "(random color jitter, hue,
  contrast, saturation) [applied] to each patch independently".

The paper does not give jitter strengths; the defaults (brightness, contrast,
saturation 0.4, hue 0.2) are those of the authors' released config. The
released config also applies random grayscale (p=0.2), extra PIL photometric
ops and flips to every patch; the paper does not list them, so they are off
(``grayscale_p`` turns grayscale on).

Output: ``[image (3, 224, 224), patches (9, 3, 64, 64)]``, both normalised float
tensors, for ``pirl_collator``. The sample-index label is left untouched.
"""
from typing import Any, Dict, List, Sequence

import torch
from classy_vision.dataset.transforms import register_transform
from classy_vision.dataset.transforms.classy_transform import ClassyTransform
from PIL import Image
from torchvision.transforms import v2

from vissl_pirl_plugin.image_utils import to_rgb_uint8
from vissl_pirl_plugin.jigsaw import extract_jigsaw_patches, jigsaw_patch_offsets

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@register_transform("ImgPilToPirlJigsaw")
class ImgPilToPirlJigsaw(ClassyTransform):
    """PIL image -> ``[I, I^t patches]``. See the module docstring for the recipe."""

    def __init__(self, image_crop_size: int = 224, image_crop_scale: Sequence[float] = (0.08, 1.0),
                 jigsaw_crop_size: int = 255, jigsaw_crop_scale: Sequence[float] = (0.6, 1.0),
                 grid_size: int = 3, patch_size: int = 64,
                 color_jitter: Sequence[float] = (0.4, 0.4, 0.4, 0.2), grayscale_p: float = 0.0,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        if len(color_jitter) != 4:
            raise ValueError("color_jitter must be [brightness, contrast, saturation, hue], got "
                             f"{list(color_jitter)}.")
        jigsaw_patch_offsets(jigsaw_crop_size, grid_size, patch_size)  # validates the geometry
        self.grid_size = grid_size
        self.patch_size = patch_size
        photometric = [v2.ColorJitter(*color_jitter), v2.RandomGrayscale(grayscale_p)]
        self.image_transform = v2.Compose([
            v2.RandomResizedCrop(image_crop_size, scale=tuple(image_crop_scale), antialias=True),
            v2.RandomHorizontalFlip(),
            *photometric,
        ])
        self.jigsaw_crop = v2.RandomResizedCrop(jigsaw_crop_size, scale=tuple(jigsaw_crop_scale),
                                                antialias=True)
        self.patch_transform = v2.Compose(photometric)
        self.normalize = v2.Compose([v2.ToDtype(torch.float32, scale=True),
                                     v2.Normalize(list(mean), list(std))])

    def __call__(self, image: Image.Image) -> List[torch.Tensor]:
        pixels = to_rgb_uint8(image)
        view = self.normalize(self.image_transform(pixels))
        crop = self.jigsaw_crop(pixels)
        offsets = jigsaw_patch_offsets(crop.shape[-1], self.grid_size, self.patch_size)
        patches = extract_jigsaw_patches(crop, offsets, self.patch_size)
        patches = patches[torch.randperm(patches.shape[0])]
        patches = torch.stack([self.patch_transform(patch) for patch in patches])
        return [view, self.normalize(patches)]

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "ImgPilToPirlJigsaw":
        return cls(**{k: v for k, v in config.items() if k not in ("name", "indices")})
