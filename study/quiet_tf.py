"""TensorFlow's native start-up chatter, kept from the user; anything else it writes still shows.

TensorFlow 2.21 writes lines from C++ that ``TF_CPP_MIN_LOG_LEVEL`` does not silence (they come
before its logging is set up), on import and on the first use of the devices::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ... (303)

``install()`` puts a finder first on ``sys.meta_path`` that intercepts the first import of
``tensorflow`` (``import keras`` imports it too), so no module needs to import anything else: the
real import runs, then ``tensorflow.config.list_physical_devices()``, with file descriptor 2
redirected to a temporary file; afterwards every captured line that is not chatter (the patterns
below) is written to stderr, so a real error still shows. The two CUDA lines count as chatter only where the
machine has no NVIDIA device (``/dev/nvidia*``): on a GPU machine they say something is wrong.
The finder then leaves ``sys.meta_path``, and the module is the one a plain import gives (same
spec, same loader). ``TF_CPP_MIN_LOG_LEVEL=0`` (every log line wanted) installs nothing.
"""
from __future__ import annotations

import glob
import os
import re
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# Where a line comes from (its C++ source file) and how its message starts; the prefix (I0000, the
# time, the thread) differs from run to run.
_ALWAYS = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IWE]\d{4} .*\] oneDNN custom operations are on\.",
)
_WITHOUT_GPU = (
    r"[IWE]\d{4} .*\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"[IWE]\d{4} .*\] failed call to cuInit: ",
)


def chatter_patterns(gpu_device: bool | None = None) -> tuple[re.Pattern[str], ...]:
    """The lines to drop; the CUDA ones only without an NVIDIA device (``gpu_device``: None looks)."""
    if gpu_device is None:
        gpu_device = bool(glob.glob("/dev/nvidia[0-9]*"))
    return tuple(re.compile(p) for p in _ALWAYS + (() if gpu_device else _WITHOUT_GPU))


def _list_devices(module: object) -> None:
    """Where cuInit is first called. A failure is left to the first real use of the devices to report."""
    try:
        module.config.list_physical_devices()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the import itself succeeded
        pass


class QuietImport:
    """Finds ``name`` with the other finders and hands back its spec with a loader that runs the real
    one (then ``after(module)``) with fd 2 captured."""

    def __init__(self, name: str, after: Callable[[object], None] | None = None,
                 patterns: tuple[re.Pattern[str], ...] | None = None) -> None:
        self.name, self.after = name, after
        self.patterns = chatter_patterns() if patterns is None else patterns

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 - the finder protocol
        if fullname != self.name:
            return None
        # Every other finder but any QuietImport: two of them (installed by cli.py and by benchmarks, say)
        # would otherwise ask each other forever.
        spec = next((s for f in sys.meta_path if not isinstance(f, QuietImport) and hasattr(f, "find_spec")
                     for s in [f.find_spec(fullname, path, target)] if s is not None), None)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self)
        return spec


class _QuietLoader:
    def __init__(self, real: Any, finder: QuietImport) -> None:
        self.real, self.finder = real, finder

    def create_module(self, spec):  # noqa: ANN001 - the loader protocol
        return self.real.create_module(spec) if hasattr(self.real, "create_module") else None

    def exec_module(self, module) -> None:  # noqa: ANN001
        module.__spec__.loader = module.__loader__ = self.real  # the module as a plain import leaves it
        uninstall(self.finder)  # once: later imports find the module in sys.modules anyway
        with captured_stderr(self.finder.patterns):
            self.real.exec_module(module)
            if self.finder.after is not None:
                self.finder.after(module)


def install(name: str = "tensorflow", after: Callable[[object], None] | None = _list_devices,
            patterns: tuple[re.Pattern[str], ...] | None = None) -> QuietImport | None:
    """Quiet the first import of ``name`` (TensorFlow by default); None when there is nothing to do
    (already imported, or ``TF_CPP_MIN_LOG_LEVEL=0`` asks for every line)."""
    if name in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() == "0":
        return None
    installed = next((f for f in sys.meta_path if isinstance(f, QuietImport) and f.name == name), None)
    if installed is not None:  # once per process, however many entry points install it
        return installed
    finder = QuietImport(name, after, patterns)
    sys.meta_path.insert(0, finder)
    return finder


def uninstall(finder: QuietImport) -> None:
    if finder in sys.meta_path:
        sys.meta_path.remove(finder)


@contextmanager
def captured_stderr(patterns: tuple[re.Pattern[str], ...]) -> Iterator[None]:
    """File descriptor 2 goes to a temporary file for the block; then its lines but the chatter go to stderr."""
    import tempfile  # here: the commands that never import TensorFlow need not load it

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if not any(p.match(line) for p in patterns)]
            data = "".join(kept).encode()
            while data:  # os.write may write less than asked
                data = data[os.write(2, data):]
