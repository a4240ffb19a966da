"""VISSL hooks of the plugin (memory-bank update, reliability guards, kNN monitor) and ``pirl_hook_generator``,
which adds them to VISSL's default hooks before the checkpoint hook."""
