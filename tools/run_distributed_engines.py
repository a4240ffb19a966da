#!/usr/bin/env python3
"""VISSL's `tools/run_distributed_engines.py`, with vissl-pirl's components and hooks.

The same as ``python -m vissl_pirl_plugin.tools.train`` (see there), kept at VISSL's path so
that VISSL's commands work as written:

    python tools/run_distributed_engines.py config=pretrain/pirl/pirl_jigsaw_4node_resnet50
"""
from vissl_pirl_plugin.tools.train import cli

if __name__ == "__main__":
    cli()
