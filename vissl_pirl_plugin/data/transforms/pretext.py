"""Registry of PIRL pretext transforms ``t`` in ``I^t = t(I)`` — the extension point.

A pretext transform maps the ``(3, H, W)`` uint8 pixels of a dataset image to
the uint8 pixels of its transformed version: ``(3, h, w)`` for one view
(rotation) or ``(P, 3, h, w)`` for patches (jigsaw). ``ImgPilToPirlPair``
pairs it with the untransformed branch ``I`` and normalises both. To add one:

.. code-block:: python

    # my_project/pretexts.py
    from vissl_pirl_plugin.data.transforms.pretext import register_pretext

    @register_pretext("my_pretext")
    class MyPretext:
        def __init__(self, strength: float = 1.0): ...
        def __call__(self, pixels: torch.Tensor) -> torch.Tensor: ...

then select it from the config or the command line; ``module`` is imported
before the name is looked up, in every process that builds the transform::

    config.DATA.TRAIN.TRANSFORMS.0.pretext={name:my_pretext,module:my_project.pretexts}
"""
import importlib
from typing import Any, Callable, Dict

PRETEXT_REGISTRY: Dict[str, Callable[..., Any]] = {}


def register_pretext(name: str) -> Callable:
    """Class decorator registering a pretext transform under ``name``."""
    def register(cls):
        if name in PRETEXT_REGISTRY and PRETEXT_REGISTRY[name] is not cls:
            raise ValueError(f"A PIRL pretext transform named {name!r} is already registered "
                             f"({PRETEXT_REGISTRY[name].__module__}). Pick another name.")
        PRETEXT_REGISTRY[name] = cls
        return cls
    return register


def build_pretext(config: Dict[str, Any]):
    """Builds ``config["name"]`` with the other keys as arguments (``module`` is imported first)."""
    params = dict(config)
    name, module = params.pop("name", None), params.pop("module", None)
    if module:
        importlib.import_module(module)
    if name not in PRETEXT_REGISTRY:
        raise ValueError(
            f"Unknown PIRL pretext transform {name!r}. Registered: {sorted(PRETEXT_REGISTRY)}. "
            "A transform of your own must be decorated with @register_pretext(name) in a module "
            "that the config names with pretext.module (e.g. pretext={name: my_pretext, "
            "module: my_project.pretexts}).")
    return PRETEXT_REGISTRY[name](**params)
