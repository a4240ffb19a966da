"""The embedded demo dataset: a folder of crops of real photographs, built offline.

``make install`` writes it from photographs that installed packages carry
(scikit-image's sample photos and scikit-learn's two sample images), so
``make demo`` never downloads anything. Each photograph gives
``crops_per_photo`` deterministic random crops, stored as JPEGs in a
``disk_folder`` layout ``<out>/train/<photo>/<k>.jpg`` (the sub-folder names the
source photograph, a label for probes).

    python -m vissl_pirl_plugin.demo_data --out data/demo
"""
import argparse
from pathlib import Path
from typing import Dict

import numpy as np
from PIL import Image

# scikit-image's bundled photographs (no synthetic or document images)
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cat", "coffee", "coins", "grass", "gravel",
                  "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket",
                  "horse", "clock")


def source_photographs() -> Dict[str, Image.Image]:
    """Named RGB photographs from scikit-image and scikit-learn."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = {name: Image.fromarray(getattr(skdata, name)()) for name in SKIMAGE_PHOTOS}
    samples = load_sample_images()
    for path, array in zip(samples.filenames, samples.images):
        photos[Path(path).stem] = Image.fromarray(array)
    return {name: photo.convert("RGB") for name, photo in photos.items()}


def build_demo_dataset(out: Path, crops_per_photo: int = 8, size: int = 160,
                       seed: int = 0) -> Path:
    """Writes the dataset under ``out/train`` (idempotent) and returns that folder."""
    train = out / "train"
    marker = train / f".complete-{crops_per_photo}-{size}-{seed}"
    if marker.exists():
        return train
    rng = np.random.default_rng(seed)
    for name, photo in sorted(source_photographs().items()):
        folder = train / name
        folder.mkdir(parents=True, exist_ok=True)
        width, height = photo.size
        for k in range(crops_per_photo):
            side = int(min(width, height) * rng.uniform(0.45, 0.9))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            crop = photo.crop((left, top, left + side, top + side)).resize((size, size),
                                                                           Image.BICUBIC)
            crop.save(folder / f"{k:03d}.jpg", quality=92)
    marker.touch()
    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.add_argument("--crops-per-photo", type=int, default=8)
    args = parser.parse_args()
    print(build_demo_dataset(args.out, args.crops_per_photo))


if __name__ == "__main__":
    main()
