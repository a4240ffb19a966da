#!/usr/bin/env python3
"""VISSL's `tools/run_distributed_engines.py`, with vissl-pirl's components and hooks.

Usage is VISSL's own, e.g.

    python tools/run_distributed_engines.py config=pretrain/pirl/pirl_jigsaw_4node_resnet50

Set config.SLURM.USE_SLURM=true for SLURM, or config.DISTRIBUTED.NUM_NODES=N and
node_id=K (one launcher per node) for several nodes. Every path trains with the
memory-bank hook (see vissl_pirl_plugin/launcher.py).
"""
import sys


def main() -> None:
    # Imported here, as in VISSL's launcher, so that submitit workers start cleanly.
    from vissl_pirl_plugin.launcher import main as launch_main

    launch_main(sys.argv[1:])


if __name__ == "__main__":
    main()
