"""What the loader-side (``per_image/``) and device-side (``batched/``) augmentations share, with
no pixels of their own: the recipe's ranges and the layout of its random draws, PIL's HSV tables,
the jigsaw geometry, the permutation sets and the normalisation constants."""
