"""vissl-pirl: PIRL (Misra & van der Maaten, CVPR 2020) as a VISSL plugin.

Importing the package registers its components in VISSL's registries:

* ``losses/``: loss ``pirl_loss`` with its ``MemoryBank``;
* ``data/``: collator ``pirl_collator``, the data sources ``disk_folder`` / ``disk_filelist``
  replaced by ``RobustDiskImageDataset`` (survives unreadable images);
* ``data/transforms/``: transforms ``ImgPilToPirlPair`` and ``ImgPilToPirlJigsaw`` with the
  pretexts ``jigsaw``, ``rotation`` and ``rotation_jigsaw`` (``register_pretext`` adds yours);
* ``models/``: head ``pirl_jigsaw_head``, trunk ``resnet_small`` (ResNet-18/10 for CPU demos);
* ``optimizers/``: optimizer ``sgd_multi_tensor`` (classy_vision's ``sgd`` on torch's
  multi-tensor path on every device);
* ``engine/``: train step ``pirl_device_augmentation_train_step`` (the augmentation on the
  training device, ``+config/pretrain/pirl/augmentation=on_device``) and task
  ``pirl_self_supervision_task`` (``DATA.TRAIN.RANK_SPLIT``, batch norm across CPU ranks).

``hooks/`` (added by ``pirl_hook_generator``), the rest of ``engine/`` (the launcher) and
``tools/`` (what users run) are imported where they are used. ``vissl_compat`` patches VISSL for today's stack
(Python 3.12+, numpy 2, setuptools 81+) first, before any VISSL module is imported, after
``third_party_warnings`` has quieted the third-party warnings a user cannot act on.
"""
from vissl_pirl_plugin.utils import third_party_warnings, vissl_compat

third_party_warnings.apply()
vissl_compat.apply()

# the imports below register components in VISSL's registries
from vissl_pirl_plugin.data import pirl_collator, robust_disk_dataset  # noqa: E402,F401
from vissl_pirl_plugin.data.transforms import (  # noqa: E402,F401
    jigsaw_pretext,
    pirl_jigsaw_transform,
    pirl_pair_transform,
    rotation_pretext,
)
from vissl_pirl_plugin.data.transforms.pretext import register_pretext  # noqa: E402,F401
from vissl_pirl_plugin.engine import device_augmentation_train_step, pirl_task  # noqa: E402,F401
from vissl_pirl_plugin.losses import pirl_loss  # noqa: E402,F401
from vissl_pirl_plugin.models import pirl_jigsaw_head, resnet_small_trunk  # noqa: E402,F401
from vissl_pirl_plugin.optimizers import multi_tensor_sgd  # noqa: E402,F401

robust_disk_dataset.install()

__version__ = "0.1.0"
