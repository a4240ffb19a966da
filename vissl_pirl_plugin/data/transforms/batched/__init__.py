"""The authors' augmentation for a whole batch on the training device
(``+config/pretrain/pirl/augmentation=on_device``): pure torch on uint8 ``(N, 3, H, W)`` crops,
the same ops as ``per_image/`` (equal to PIL's, tested on both), drawn from a ``torch.Generator``;
``pirl_augmentation.py`` makes the pair ``[I, I^t]`` of a batch."""
