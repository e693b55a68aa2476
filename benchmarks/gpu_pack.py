"""Pack what the GPU check needs into ``.gpu/`` (git-ignored), within the 64 MiB a device call carries.

    python -m benchmarks.gpu_pack [--faces DIR] [--dest .gpu]

The lent GPU machine has Python 3.12, JAX, PyTorch, NumPy, pandas, scikit-learn, SciPy, rich, click,
matplotlib and OpenCV, but no TensorFlow, no Keras and no network. This writes into ``DEST``:

* ``wheels/``: the packages it lacks, at the versions installed here, built for CPython 3.12 on
  manylinux x86-64 (``pip download --no-deps``): Keras and its small dependencies, optuna and its
  store (SQLAlchemy, alembic), optuna-integration, keras-tuner;
* ``fer2013.tar.gz``: ``../shared/fer2013`` as it is (its JPEG files, the real loading code reads them);
* ``run.sh``: installs the wheels into /tmp/site, unpacks the faces into /tmp, and runs
  ``python -m benchmarks.gpu`` under ``KERAS_BACKEND=jax`` with its table and ``gpu.json`` in ``$OUT``.

The whole working tree that travels (the repository's files and ``DEST``) is checked against the limit.
The device call is then (its ``carry`` names ``.gpu``)::

    bash .gpu/run.sh
"""
from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from benchmarks.common import SHARED_FER

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 64 * 2**20
WHEELS = ("keras", "namex", "optree", "optuna", "sqlalchemy", "alembic", "mako", "colorlog", "cmaes",
          "optuna-integration", "keras-tuner", "kt-legacy")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
RUN = """#!/usr/bin/env bash
# The GPU check on the lent machine (written by python -m benchmarks.gpu_pack): JAX, the packed wheels, the
# packed faces. Its table and gpu.json land in $OUT; about 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax PYTHONUNBUFFERED=1 FER_STUDY_CACHE=/tmp/fer-cache
export XLA_PYTHON_CLIENT_PREALLOCATE=false
mkdir -p /tmp/faces && tar -xzf .gpu/fer2013.tar.gz -C /tmp/faces
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "${OUT:-/tmp}/nvidia-smi.csv"
timeout 500 python3 -m benchmarks.gpu --data /tmp/faces/fer2013 --out "${OUT:-/tmp/gpu-out}" "$@"
"""


def download_wheels(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    for name in WHEELS:
        version = importlib.metadata.version(name)
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(dest),
                        f"{name}=={version}"], check=True)
    return sorted(dest.glob("*.whl"))


def pack_faces(faces: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz", compresslevel=9) as tar:
        tar.add(faces, arcname="fer2013")
    return out


def travelling_bytes(dest: Path) -> int:
    """The repository's tracked files and ``dest``: what a device call carries."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    tracked = sum((ROOT / p).stat().st_size for p in listed.decode().split("\0") if p and (ROOT / p).is_file())
    return tracked + sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=SHARED_FER, help="the real faces folder")
    parser.add_argument("--dest", type=Path, default=ROOT / ".gpu")
    args = parser.parse_args(argv)
    if not args.faces.is_dir():
        raise SystemExit(f"{args.faces} is not a folder: the GPU check runs on the real faces")
    if args.dest.exists():
        shutil.rmtree(args.dest)
    wheels = download_wheels(args.dest / "wheels")
    pack_faces(args.faces, args.dest / "fer2013.tar.gz")
    (args.dest / "run.sh").write_text(RUN)
    size = travelling_bytes(args.dest)
    print(f"packed {len(wheels)} wheels and the faces into {args.dest}: {size / 2**20:.1f} MiB travel "
          f"(limit {LIMIT / 2**20:.0f} MiB)")
    if size > LIMIT:
        raise SystemExit(f"{size / 2**20:.1f} MiB is over the {LIMIT / 2**20:.0f} MiB a device call carries")
    print("run it with the device tool: command 'bash .gpu/run.sh', carry ['.gpu']")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
