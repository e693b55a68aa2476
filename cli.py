"""fer-study command line: data, train, evaluate, search, studies, show, space, report, predict, export, demo.

The commands live in the ``command_line`` package; this file is the entry point (``python cli.py``,
or the ``fer-study`` script). Bad input ends with a one-line error and exit status 2, never a traceback.
"""
from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter, not warnings we act on
# "triggered tf.function retracing": expected when every trial of a search builds a new model.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from command_line import cli  # noqa: E402

if __name__ == "__main__":
    cli()
