"""Pre-training and benchmarks with VISSL's trainer and the plugin's hooks: VISSL's
``tools/run_distributed_engines.py`` command line, e.g. ::

    python -m vissl_pirl_plugin.tools.train config=pretrain/pirl/pirl_jigsaw_4node_resnet50

(also ``vissl-pirl-train ...`` or ``python tools/run_distributed_engines.py ...``). Set
``config.SLURM.USE_SLURM=true`` for SLURM, or ``config.DISTRIBUTED.NUM_NODES=N`` and
``node_id=K`` (one launcher per node) for several nodes. Every path trains with the memory-bank
hook (``vissl_pirl_plugin.engine.launcher``). ``--list-configs`` prints the PIRL configs as a
command line names them.
"""
import sys
from pathlib import Path


def cli() -> None:
    """The console script ``vissl-pirl-train``."""
    # Imported here, as in VISSL's launcher, so that submitit workers start cleanly.
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(f"usage: {Path(sys.argv[0]).name} config=NAME [config.KEY=VALUE ...] [node_id=K]\n"
              f"       {Path(sys.argv[0]).name} --list-configs\n{__doc__}")
        return
    if "--list-configs" in sys.argv[1:]:
        from vissl_pirl_plugin.engine.config_names import plugin_configs

        print("\n".join(plugin_configs()))
        return
    from vissl_pirl_plugin.engine.launcher import main
    from vissl_pirl_plugin.tools.command_line import run_tool

    run_tool(main)  # a failed check before the launch (LaunchCheckError): one line


if __name__ == "__main__":
    cli()
