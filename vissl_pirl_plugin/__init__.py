"""vissl-pirl: PIRL (Misra & van der Maaten, CVPR 2020) as a VISSL plugin.

Importing the package registers its components in VISSL's registries:

* loss ``pirl_loss`` (``pirl_loss.py``) with its ``MemoryBank`` (``memory_bank.py``),
* hook ``MemoryBankUpdateHook`` (``memory_bank_hook.py``), added by
  ``pirl_hook_generator`` (``hook_generator.py``),
* transforms ``ImgPilToPirlPair`` (``pirl_pair_transform.py``) and
  ``ImgPilToPirlJigsaw`` (``pirl_jigsaw_transform.py``), with the pretext
  transforms ``jigsaw``, ``rotation`` and ``rotation_jigsaw`` (``pretext.py`` is the
  registry users extend),
* collator ``pirl_collator`` (``pirl_collator.py``),
* data sources ``disk_folder`` / ``disk_filelist`` replaced by
  ``RobustDiskImageDataset`` (``robust_disk_dataset.py``), which survives unreadable images,
* head ``pirl_jigsaw_head`` (``pirl_jigsaw_head.py``),
* trunk ``resnet_small`` (``resnet_small_trunk.py``): ResNet-18/10 for CPU demos.
"""
from vissl_pirl_plugin import (  # noqa: F401  (imported to register)
    jigsaw_pretext,
    pirl_collator,
    pirl_jigsaw_head,
    pirl_jigsaw_transform,
    pirl_loss,
    pirl_pair_transform,
    resnet_small_trunk,
    robust_disk_dataset,
    rotation_pretext,
)

robust_disk_dataset.install()

__version__ = "0.1.0"
