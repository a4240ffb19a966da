"""``ImgPilToPirlJigsaw``: the paper's main PIRL-Jigsaw pair transform (Appendix A.1).

``ImgPilToPirlPair`` with the ``jigsaw`` pretext, its arguments flattened:
``jigsaw_crop_size`` / ``jigsaw_crop_scale`` are the jigsaw crop's, ``grid_size``,
``patch_size``, ``num_permutations``, ``permutation_seed`` and
``permutation_selection`` are passed on; the photometric arguments of ``CropAugmentation``
(``color_jitter``, ``jitter_p``, ``photometric_p``, ``grayscale_p``, ``blur_p``,
``blur_sigma``) apply to ``I`` and, independently, to every patch; ``flip_p`` flips ``I`` and
``patch_flip_p`` each patch (both 0.5, as the authors' config). Output: ``[I (3, 224, 224), patches
(9, 3, 64, 64)]``.
"""
from typing import Any, Optional, Sequence

from classy_vision.dataset.transforms import register_transform

from vissl_pirl_plugin.data.transforms.pirl_pair_transform import ImgPilToPirlPair

PHOTOMETRIC_KEYS = ("color_jitter", "jitter_p", "photometric_p", "grayscale_p", "blur_p",
                    "blur_sigma")


@register_transform("ImgPilToPirlJigsaw")
class ImgPilToPirlJigsaw(ImgPilToPirlPair):
    def __init__(self, jigsaw_crop_size: int = 255, jigsaw_crop_scale: Sequence[float] = (0.6, 1.0),
                 grid_size: int = 3, patch_size: int = 64, num_permutations: Optional[int] = None,
                 permutation_seed: int = 0, permutation_selection: str = "maxhamming",
                 patch_flip_p: float = 0.5, **pair_params: Any) -> None:
        pretext = {"name": "jigsaw", "crop_size": jigsaw_crop_size,
                   "crop_scale": jigsaw_crop_scale, "grid_size": grid_size,
                   "patch_size": patch_size, "num_permutations": num_permutations,
                   "permutation_seed": permutation_seed,
                   "permutation_selection": permutation_selection, "flip_p": patch_flip_p}
        pretext.update({k: pair_params[k] for k in PHOTOMETRIC_KEYS if k in pair_params})
        super().__init__(pretext=pretext, **pair_params)
