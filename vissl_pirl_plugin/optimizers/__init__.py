"""Optimizers registered in classy_vision's registry (VISSL's ``OPTIMIZER.name``):
``sgd_multi_tensor`` (``multi_tensor_sgd.py``)."""
