"""A larger pre-training set made from the demo's photographs: random crops of their stamps.

The demo's training photographs are 72-px copies of Tux Paint stamps of a few hundred pixels
(``demo_data``). ``K`` random crops of each photograph's stamp (on its white square: 35 to 100 %
of the area, aspect ratio 3/4 to 4/3, as a random resized crop draws them), each resized to the
photographs' 72 px, give ``K`` times as many distinct images of the same objects: more images
and more steps per epoch on the same machinery, with the probes and the kNN still measured on
the photographs. ``make compare COMPARE_ARGS="--crops K"`` pre-trains on them;
docs/training.md's "NCE or InfoNCE" measurements use them (paper §2.2: what NCE needs of the
dataset).

    python -m vissl_pirl_plugin.tools.demo_crops --photographs DIR --out DIR --per-photograph K
        [--stamps DIR] [--seed 0]

writes ``<out>/all/<photograph>_<k>.jpg``. The crops are drawn in the order of the sorted
photograph paths from one ``random.Random(seed)``, so a build is the same on every machine.
"""
import argparse
import random
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from PIL import Image

from vissl_pirl_plugin.tools.demo_data import (
    IMAGE_SIZE, DemoDataError, photograph_stem, square_on_white, stamp_photographs)

AREA_RANGE = (0.35, 1.0)
RATIO_RANGE = (3 / 4, 4 / 3)
CROP_FOLDER = "all"
JPEG_QUALITY = 95
FORMAT_VERSION = 1


def photograph_stems(photographs: Path) -> List[str]:
    """The file stems of the photographs (``*.jpg`` below ``photographs``), in draw order."""
    return [path.stem for path in sorted(photographs.rglob("*.jpg"))]


def stamps_of(stems: Sequence[str], photographs: Path, stamps: Optional[Path],
              cache: Path) -> Dict[str, bytes]:
    """The PNG bytes of the stamp of each photograph, by file stem."""
    if not stems:
        raise DemoDataError(f"No photographs (*.jpg) in {photographs}: pass the demo's training "
                            "folder, e.g. data/demo/train or the split/train of make compare.")
    wanted, found = set(stems), {}
    with stamp_photographs(stamps, cache) as source:  # a .deb is kept when this fails
        for relative, png in source:
            stem = photograph_stem(relative)
            if stem in wanted:
                found[stem] = png
        missing = sorted(wanted - set(found))
        if missing:
            raise DemoDataError(
                f"{len(missing)} photographs of {photographs} have no Tux Paint stamp, e.g. "
                f"{missing[0]}.jpg: crops are cut from the stamps the demo dataset was built "
                "from. Pass the photographs of data/demo/train (or a subset of them), and "
                "--stamps DIR with the stamps folder they were built from.")
    return found


def prepare_out(out: Path, photographs: Path) -> None:
    """Refuses an ``out`` that would mix with the photographs or replace files of the user's."""
    if out.resolve().is_relative_to(photographs.resolve()):
        raise DemoDataError(f"--out {out} lies inside --photographs {photographs}: the crops "
                            "would be read as photographs. Choose a folder outside it.")
    folder = out / CROP_FOLDER
    if folder.exists() and any(folder.iterdir()) and not any(out.glob(".complete-*")):
        raise DemoDataError(f"{folder} holds files that demo_crops did not write; choose another "
                            "--out (a build replaces its folder all/).")


def build_crop_set(photographs: Path, out: Path, per_photograph: int,
                   stamps: Optional[Path] = None, size: int = IMAGE_SIZE, seed: int = 0,
                   cache: Optional[Path] = None) -> Path:
    """Writes ``per_photograph`` crops of each photograph's stamp to ``out/all`` (idempotent).

    Returns ``out``, an image folder for ``DATA.TRAIN.DATA_PATHS``. ``cache``: where the
    Debian package is fetched to when no stamps folder is found (default ``out/cache``).
    """
    if per_photograph < 1:
        raise ValueError(f"per_photograph={per_photograph}: give at least 1 crop per photograph.")
    stems = photograph_stems(photographs)
    marker = out / f".complete-v{FORMAT_VERSION}-{per_photograph}-{size}-{seed}"
    folder = out / CROP_FOLDER
    if marker.exists() and folder.is_dir() and marker.read_text() == "\n".join(stems):
        return out
    prepare_out(out, photographs)
    squares = stamps_of(stems, photographs, stamps, cache or out / "cache")
    if folder.exists():
        shutil.rmtree(folder)  # an incomplete build, or one of other parameters or photographs
    for stale in out.glob(".complete-*"):
        stale.unlink()
    folder.mkdir(parents=True)
    digits = max(2, len(str(per_photograph - 1)))
    rng = random.Random(seed)
    for stem in stems:
        square = square_on_white(squares[stem])
        side = square.width
        for k in range(per_photograph):
            area = rng.uniform(*AREA_RANGE) * side * side
            ratio = rng.uniform(*RATIO_RANGE)
            width = min(side, int(round((area * ratio) ** 0.5)))
            height = min(side, int(round((area / ratio) ** 0.5)))
            left, top = rng.randint(0, side - width), rng.randint(0, side - height)
            crop = square.crop((left, top, left + width, top + height))
            crop.resize((size, size), Image.BICUBIC).save(
                folder / f"{stem}_{k:0{digits}d}.jpg", quality=JPEG_QUALITY)
    marker.write_text("\n".join(stems))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photographs", type=Path, required=True,
                        help="the demo's training photographs, e.g. data/demo/train")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-photograph", type=int, required=True)
    parser.add_argument("--stamps", type=Path, default=None,
                        help="an unpacked Tux Paint stamps folder (default: the Debian package)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = build_crop_set(args.photographs, args.out, args.per_photograph, args.stamps,
                         seed=args.seed)
    print(f"{out}: {sum(1 for _ in (out / CROP_FOLDER).glob('*.jpg'))} crops")


if __name__ == "__main__":
    main()
