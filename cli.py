"""fer-study command line: data, train, evaluate, pretrain, search, studies, show, space, report, predict, export, demo.

The commands live in the ``command_line`` package; this file is the entry point (``python cli.py``,
or the ``fer-study`` script, and the workers of ``search --workers N``). Bad input ends with a
one-line error and exit status 2, never a traceback. Nothing here imports TensorFlow: the commands
that need it load it themselves, and its native start-up chatter is kept from the user
(``study/quiet_tf.py``) wherever that happens.
"""
from __future__ import annotations

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's C++ start-up chatter, not warnings we act on
# "triggered tf.function retracing": expected when every trial of a search builds a new model.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

from study import quiet_tf  # noqa: E402

quiet_tf.install()  # before any command runs: the first `import tensorflow` (or keras) is quieted

from command_line import cli  # noqa: E402

if __name__ == "__main__":
    cli()
