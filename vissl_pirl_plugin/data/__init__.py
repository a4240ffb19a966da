"""Data: the robust ``disk_folder`` / ``disk_filelist`` dataset, the ``pirl_collator`` and image
helpers. ``transforms/`` holds the pair transform and the pretext tasks."""
