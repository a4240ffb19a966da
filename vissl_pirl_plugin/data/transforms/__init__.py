"""Transforms: ``ImgPilToPirlPair`` / ``ImgPilToPirlJigsaw`` (I and I^t, §3) and the pretext
registry (``register_pretext``, the extension point) with its jigsaw and rotation pretexts, here;
below them, the authors' augmentation in two twins that follow the same arguments and draw the
same values:

* ``per_image/``: one image at a time in the loader workers (uint8 arrays, OpenCV, PIL-exact);
* ``batched/``: a whole batch at once on the training device (torch, ``augmentation=on_device``);
* ``common/``: what both use: the recipe's ranges and draw layout, PIL's HSV tables, the jigsaw
  geometry, permutation sets, the normalisation.
"""
from vissl_pirl_plugin.data.transforms.pretext import register_pretext  # noqa: F401
