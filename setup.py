"""vissl-pirl: PIRL (Misra & van der Maaten, CVPR 2020) as a VISSL plugin.

VISSL 0.1.6 and classy-vision 0.7.0 are required but not listed: their own pins
(numpy 1.19, scikit-learn 0.24, hydra 1.0) cannot be installed on current
Pythons, so install them with ``pip install --no-deps vissl==0.1.6
classy-vision==0.7.0`` (``make install`` does; see README.md).
"""
from setuptools import find_packages, setup

setup(
    name="vissl-pirl",
    version="0.1.0",
    description="PIRL (Pretext-Invariant Representation Learning) components for VISSL",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["vissl_pirl_plugin", "vissl_pirl_plugin.*"])
    + ["hydra_plugins.vissl_pirl_searchpath", "vissl_pirl_plugin.hydra_configs"],
    # a wheel ships configs/ inside the package; a source checkout reads configs/ directly
    package_dir={"vissl_pirl_plugin.hydra_configs": "configs"},
    package_data={"vissl_pirl_plugin.hydra_configs": ["**/*.yaml"]},
    install_requires=[
        "torch>=2.0",
        "torchvision>=0.15",
        "hydra-core>=1.1",
        "omegaconf>=2.1",
        "fvcore",
        "iopath",
        "numpy",
        "scikit-learn",
        "pandas",
        "tabulate",
        "submitit",
        "Pillow",
        "opencv-python-headless",
        "tensorboard",
    ],
    entry_points={
        "console_scripts": [
            "vissl-pirl-train = vissl_pirl_plugin.tools.train:cli",
            "vissl-pirl-demo = vissl_pirl_plugin.tools.demo:cli",
            "vissl-pirl-probe = vissl_pirl_plugin.tools.linear_probe:cli",
            "vissl-pirl-invariance = vissl_pirl_plugin.tools.invariance:cli",
            "vissl-pirl-voc07-svm = vissl_pirl_plugin.tools.voc07_svm:cli",
            "vissl-pirl-convert = vissl_pirl_plugin.tools.convert_checkpoint:cli",
        ]
    },
    extras_require={"demo": ["scikit-image"], "test": ["pytest"]},
)
