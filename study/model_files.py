"""Is a file what its name says: a Keras model (``.keras``, a zip holding config.json) or HDF5
weights (``.h5``)? Read from a few bytes, without TensorFlow, so that a run or a search refuses a bad
«weights» file before it reads data or opens a store, and inference names what is wrong where
Keras would say "File not found"."""
from __future__ import annotations

import zipfile
from pathlib import Path

from study.errors import ModelError


def check_weights_source(weights: str) -> None:
    """A «weights» file must exist and be what its suffix says: checked when a run or a search starts,
    before data is read or a store opened (not by TrainConfig itself, so that a stored run whose
    weights source has since moved or changed still loads)."""
    if weights in ("imagenet", "none"):
        return
    if not Path(weights).expanduser().exists():
        raise ModelError(f"«weights» {weights} does not exist (give imagenet, none, a weights file, or a run "
                         "directory or its model.keras)")
    check_weights_file(weights)


def check_weights_file(weights: str) -> None:
    """An existing «weights» file must be what its suffix says (a missing one is not checked here)."""
    path = Path(weights).expanduser() if weights not in ("imagenet", "none") else None
    if path is not None and path.is_dir():
        path = path / "model.keras"
    if path is None or not path.is_file():
        return
    problem = file_format_problem(path)
    if problem:
        kind = "an HDF5 weights file" if path.suffix in HDF5_SUFFIXES else "a Keras model file"
        raise ModelError(f"«weights» {path} is not {kind} ({problem})")


HDF5_SUFFIXES = (".h5", ".hdf5")
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at offset 0, or 512, 1024, ... after a user block


def file_format_problem(path: Path) -> str | None:
    """What makes an existing file no Keras model (``.keras``: a zip archive holding config.json) or
    no HDF5 file (``.h5``, ``.hdf5``), read from a few of its bytes; None if it looks right or has
    another suffix. Keras itself says "File not found" for a .keras file that is not a zip."""
    if path.suffix not in (".keras", *HDF5_SUFFIXES):
        return None
    try:
        if path.stat().st_size == 0:
            return "it is empty"
        return _hdf5_problem(path) if path.suffix in HDF5_SUFFIXES else _keras_zip_problem(path)
    except OSError as exc:
        return f"it cannot be read: {exc.strerror or exc}"


def _hdf5_problem(path: Path) -> str | None:
    size = path.stat().st_size
    with path.open("rb") as file:
        for offset in (0, *(512 << k for k in range((size // 512).bit_length()))):
            file.seek(offset)
            if file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return None
    return "it has no HDF5 signature"


def _keras_zip_problem(path: Path) -> str | None:
    if not zipfile.is_zipfile(path):
        with path.open("rb") as file:
            zip_start = file.read(4) == b"PK\x03\x04"
        return "it is a truncated or damaged zip archive" if zip_start else "it is not a zip archive"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile as exc:
        return f"it is a damaged zip archive ({exc})"
    return None if "config.json" in names else "it is a zip archive without the config.json Keras writes"
