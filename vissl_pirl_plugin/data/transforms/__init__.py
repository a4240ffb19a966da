"""Transforms: ``ImgPilToPirlPair`` / ``ImgPilToPirlJigsaw`` (I and I^t, §3), the pretext registry
(``register_pretext``, the extension point) with its jigsaw and rotation pretexts, permutation sets
and the photometric augmentation."""
from vissl_pirl_plugin.data.transforms.pretext import register_pretext  # noqa: F401
