"""Engine: the launcher (local, multi-node, SLURM) and the config and data checks it runs first."""
