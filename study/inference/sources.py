"""INPUT... on the command line -> the files to process, each with where its annotated copy goes.

``--annotate OUT`` names a file when the only input is one file and OUT has a suffix (``out.png``),
and a folder otherwise (``out``, ``out/``, or an existing folder): a folder
input's images keep their relative paths under OUT, so two ``face.jpg`` in different subfolders
do not overwrite each other. Several inputs each get their own subfolder (or file) in OUT.
An input that cannot be used (missing, an empty folder) becomes a ``Failure``, not an exception,
so the other inputs are still processed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from study.data import IMAGE_SUFFIXES

# PIL reads these too; the training loader's list is kept as it is for datasets.
PREDICT_IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv"})
VIDEO_OUT_SUFFIX = ".mp4"  # the mp4v codec writes MPEG-4 part 2 into an .mp4 container


@dataclass(frozen=True)
class Item:
    """One file to process: ``name`` is how tables and errors call it."""

    path: Path
    name: str
    kind: Literal["image", "video"]
    annotate_to: Path | None = None


@dataclass(frozen=True)
class Failure:
    """An input that could not be used, and the one-line reason."""

    name: str
    message: str


def kind_of(path: Path) -> Literal["image", "video"]:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def collect(inputs: list[str], annotate: str | None) -> tuple[list[Item], list[Failure]]:
    """Every file named or found (recursively) in a named folder, in a stable order."""
    out = Path(annotate).expanduser() if annotate else None
    single_file = len(inputs) == 1 and Path(inputs[0]).expanduser().is_file()
    items: list[Item] = []
    failures: list[Failure] = []
    for raw in inputs:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = _folder_items(path, raw, _folder_target(out, path, len(inputs)))
            items += found
            if not found:
                failures.append(Failure(raw, _empty_folder_message(path)))
        elif path.is_file():
            items.append(Item(path, raw, kind_of(path), _file_target(out, path, single_file)))
        else:
            failures.append(Failure(raw, f"{raw} does not exist: check the path"))
    return items, failures


def _folder_items(folder: Path, name: str, target: Path | None) -> list[Item]:
    files = sorted(
        p for p in folder.rglob("*")
        if p.suffix.lower() in PREDICT_IMAGE_SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    return [
        Item(p, str(Path(name) / p.relative_to(folder)), "image", target / p.relative_to(folder) if target else None)
        for p in files
    ]


def _folder_target(out: Path | None, folder: Path, inputs: int) -> Path | None:
    if out is None:
        return None
    return out if inputs == 1 else out / folder.resolve().name


def _file_target(out: Path | None, path: Path, single_file: bool) -> Path | None:
    """OUT itself for a lone file and a file-like OUT, else OUT/<name>."""
    if out is None:
        return None
    if single_file and out.suffix and not out.is_dir():
        return out
    return out / (path.stem + VIDEO_OUT_SUFFIX if kind_of(path) == "video" else path.name)


def _empty_folder_message(folder: Path) -> str:
    suffixes = "/".join(sorted(s.lstrip(".") for s in PREDICT_IMAGE_SUFFIXES))
    return f"folder {folder} holds no images ({suffixes}): pass a folder of images, or the files themselves"
