"""The embedded demo dataset: labelled real photographs, built offline from a Debian package.

Source: Debian's ``tuxpaint-stamps-default`` (GPL-2), the stamp collection of the Tux
Paint drawing program. Most stamps are photographs of real objects (birds, mammals,
fruit, flowers, tools, vehicles ...) cut out onto a transparent background and filed
in category folders, which makes it a small labelled photo set that any Debian or
Ubuntu machine can fetch from its package archive (``apt-get download``, no root, no
install). ``make install`` writes the photographs of five classes (cartoon folders
and mirrored duplicates left out), each flattened on white, padded to a square and
resized to 72 px, as ``<out>/train/<class>/<stamp>.jpg``: 169 images, 18 to 65 per
class. PIRL pre-trains on them without labels; the linear probe then uses the class
sub-folders (or, for its identity probe, each photograph) as labels.

A machine without Debian's tools can pass ``--stamps DIR``, an unpacked Tux Paint
``stamps`` folder (from the ``tuxpaint-stamps`` release of any platform).

    python -m vissl_pirl_plugin.tools.demo_data --out data/demo [--stamps DIR]
"""
import argparse
import io
import os
import shutil
import subprocess
import tarfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Iterator, Optional, Tuple

from PIL import Image

from vissl_pirl_plugin.utils.user_errors import UserInputError

PACKAGE = "tuxpaint-stamps-default"
STAMPS_PREFIX = "usr/share/tuxpaint/stamps/"
INSTALLED_STAMPS = Path("/") / STAMPS_PREFIX
# class -> stamp folder (every photograph below it)
CLASSES = {"birds": "animals/birds", "flowers": "plants/flowers", "fruit": "food/fruit",
                 "mammals": "animals/mammals", "vegetables": "food/vegetables"}
# drawings, letters, signs and mirrored duplicates are not photographs
EXCLUDED_PARTS = ("cartoon", "_mirror")
IMAGE_SIZE = 72
FORMAT_VERSION = 1
DEMO_ROOT = Path("data/demo")
TRAIN_FOLDER = "train"
DEMO_IMAGES = DEMO_ROOT / TRAIN_FOLDER  # what make install writes, relative to the repo


class DemoDataError(UserInputError):
    """The stamps could not be obtained; the message says how to fix it."""


def photograph_class(relative: str) -> Optional[str]:
    """The class of a stamp (path below the stamps folder), None if it is not used."""
    if not relative.endswith(".png") or any(part in relative for part in EXCLUDED_PARTS):
        return None
    for name, folder in CLASSES.items():
        if relative.startswith(folder + "/"):
            return name
    return None


def download_package(cache: Path) -> Path:
    """The package's .deb in ``cache``, fetched with ``apt-get download`` if absent."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if found:
        return found[-1]
    command = ["apt-get", "download", PACKAGE]
    try:
        result = subprocess.run(command, cwd=cache, capture_output=True, text=True)
        if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
            # a fresh machine has no package lists yet; root can fetch them
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            result = subprocess.run(command, cwd=cache, capture_output=True, text=True)
    except FileNotFoundError:
        raise DemoDataError(
            f"apt-get is not available to fetch the Debian package {PACKAGE}. Pass --stamps DIR "
            "with an unpacked Tux Paint 'stamps' folder instead.") from None
    found = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not found:
        raise DemoDataError(
            f"'apt-get download {PACKAGE}' failed: {result.stderr.strip()[-400:]}\n"
            "Fix: run 'sudo apt-get update' and try again, or install the package "
            f"('sudo apt-get install {PACKAGE}'), or pass --stamps DIR with an unpacked Tux Paint "
            "'stamps' folder.")
    return found[-1]


def photographs_in_package(deb: Path) -> Iterator[Tuple[str, bytes]]:
    """(path below the stamps folder, PNG bytes) of each photograph in the .deb."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as unpack:
        with tarfile.open(fileobj=unpack.stdout, mode="r|") as archive:
            for member in archive:
                name = member.name.lstrip("./")
                if member.isfile() and name.startswith(STAMPS_PREFIX):
                    relative = name[len(STAMPS_PREFIX):]
                    if photograph_class(relative) is not None:
                        yield relative, archive.extractfile(member).read()
    if unpack.returncode != 0:
        raise DemoDataError(f"dpkg-deb could not unpack {deb}; delete it and run again.")


def photographs_in_folder(stamps: Path) -> Iterator[Tuple[str, bytes]]:
    for path in sorted(stamps.rglob("*.png")):
        relative = path.relative_to(stamps).as_posix()
        if photograph_class(relative) is not None:
            yield relative, path.read_bytes()


def square_on_white(png: bytes) -> Image.Image:
    """The stamp at its own size, centred on a white square (its transparency filled)."""
    stamp = Image.open(io.BytesIO(png)).convert("RGBA")
    width, height = stamp.size
    side = max(width, height)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(stamp, ((side - width) // 2, (side - height) // 2))
    return square.convert("RGB")


def flatten_on_white(png: bytes, size: int) -> Image.Image:
    """The stamp over a white square (its transparency filled), resized to ``size``."""
    return square_on_white(png).resize((size, size), Image.BICUBIC)


def photograph_stem(relative: str) -> str:
    """The file stem of a stamp's photograph: its path below the stamps folder, with ``_``."""
    return relative[:-len(".png")].replace("/", "_")


def stamps_source(stamps: Optional[Path]) -> Optional[Path]:
    """The stamps folder to read: ``stamps``, else Tux Paint's installed stamps; None: the .deb."""
    if stamps is None and INSTALLED_STAMPS.is_dir():
        return INSTALLED_STAMPS
    return stamps


@contextmanager
def stamp_photographs(stamps: Optional[Path],
                      cache: Path) -> Iterator[Iterator[Tuple[str, bytes]]]:
    """(path below the stamps folder, PNG bytes) of each photograph of the classes.

    From ``stamps_source(stamps)``, else the Debian package fetched into ``cache``: the .deb
    (160 MB, mostly sound files) and ``cache``, then empty, are deleted once read through, and
    kept for the next try when reading fails.
    """
    folder = stamps_source(stamps)
    if folder is not None:
        yield photographs_in_folder(folder)
        return
    deb = download_package(cache)
    yield photographs_in_package(deb)
    deb.unlink()
    with suppress(OSError):  # other files in it: keep them
        cache.rmdir()


def build_demo_dataset(out: Path, stamps: Optional[Path] = None, size: int = IMAGE_SIZE) -> Path:
    """Writes ``out/train`` (idempotent) and returns that folder."""
    train = out / TRAIN_FOLDER
    marker = out / f".complete-v{FORMAT_VERSION}-{size}"
    if marker.exists():
        return train
    count = 0
    with stamp_photographs(stamps, out / "cache") as photographs:
        if train.exists():
            shutil.rmtree(train)  # an incomplete build, or one of an older format
        for relative, png in photographs:
            folder = train / photograph_class(relative)
            folder.mkdir(parents=True, exist_ok=True)
            flatten_on_white(png, size).save(folder / f"{photograph_stem(relative)}.jpg",
                                             quality=92)
            count += 1
        if count == 0:
            raise DemoDataError(f"No photographs of {sorted(CLASSES)} found in "
                                f"{stamps_source(stamps) or PACKAGE}.")
    marker.touch()
    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_ROOT)
    parser.add_argument("--stamps", type=Path, default=None,
                        help="an unpacked Tux Paint stamps folder (default: the Debian package)")
    args = parser.parse_args()
    train = build_demo_dataset(args.out, args.stamps)
    print(f"{train}: {sum(1 for _ in train.rglob('*.jpg'))} images")


if __name__ == "__main__":
    main()
