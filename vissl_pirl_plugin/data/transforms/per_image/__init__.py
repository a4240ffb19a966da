"""The authors' augmentation one image at a time, in the loader workers: uint8 arrays, OpenCV and
lookup tables, each op equal to VISSL's PIL op (the random resized crop, the colour jitter, PIL's
photometric ops and HSV, the per-crop recipe). ``batched/`` is its twin on the training device."""
