"""The plugin's components in runs launched by VISSL's own ``tools/run_distributed_engines.py``.

VISSL's launcher never imports ``vissl_pirl_plugin``, so ``pirl_loss``, ``pirl_jigsaw_head``
and the PIRL transforms are missing from its registries (``AssertionError: Unknown model
head``). The Hydra search-path plugin (``hydra_plugins/vissl_pirl_searchpath``) calls
``register_in_vissl_launch`` whenever Hydra composes VISSL's config, which every VISSL launch
does first:

* importing ``vissl_pirl_plugin`` registers the components in the launching process, which
  trains itself when the run has one process;
* with more processes VISSL calls ``torch.multiprocessing.spawn(_distributed_worker, ...)``:
  fresh interpreters that import only what unpickling the worker function needs. VISSL's
  ``_distributed_worker`` is replaced by ``distributed_worker``, the same function reached
  through this module, so every worker imports the plugin before it builds the model.

Such a run still has VISSL's default hooks only, without the memory-bank update: ``pirl_loss``
stops it at its second step with a message naming the plugin's launcher
(``PIRLLoss.check_bank_hook_runs``).
"""
from vissl.utils import distributed_launcher

import vissl_pirl_plugin  # noqa: F401  (registers the components)

_vissl_distributed_worker = distributed_launcher._distributed_worker


def distributed_worker(*args, **kwargs):
    """VISSL's ``_distributed_worker``; pickled by reference to this module, it makes a spawned
    worker import the plugin before it runs."""
    return _vissl_distributed_worker(*args, **kwargs)


def register_in_vissl_launch() -> None:
    """Registers the components here and in the workers VISSL's launcher will spawn."""
    distributed_launcher._distributed_worker = distributed_worker
