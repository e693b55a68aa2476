"""``cli.py`` with a fake training of seeded random length: the subject of the kill loop in
``tests/test_distributed.py``. Usage: ``python tests/fault_search.py SEED search ARGS...``.

The fake writes its run the way ``train`` does (a staging folder renamed into place), so a kill
leaves what a real one would: a RUNNING trial, perhaps a ``.trial-N.partial`` folder. It reports
three epochs to the trial's callbacks, so pruning and the live display see a trial like any other.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from study import runs  # noqa: E402
from study.training import RunResult  # noqa: E402
from study.tuning import objective as objective_mod  # noqa: E402

EPOCHS = 3


def fake_train(rng: random.Random):
    def train(config, data, run_dir, *, callbacks=(), **_: object) -> RunResult:
        stage = runs.start(run_dir)
        value = rng.uniform(0.3, 0.6)
        try:
            for epoch in range(EPOCHS):
                time.sleep(rng.uniform(1.5, 3.0))  # long beside the test's polling, even on a loaded machine
                for callback in callbacks:
                    callback.on_epoch_end(epoch, {"val_accuracy": value, "val_loss": 1.0 - value})
            runs.write_json(stage / "metrics.json", {"val": {"accuracy": value}})
            runs.finish(stage, Path(run_dir))
        except BaseException:  # as train() does: Ctrl-C or SIGTERM leaves no staging folder (SIGKILL does)
            runs.abandon(stage)
            raise
        metrics = {"val": {"accuracy": value, "loss": 1.0 - value, "macro_f1": value, "learned": True,
                           "baseline": {"majority_rate": 0.25}}, "stall": {"stalled": False}}
        return RunResult(Path(run_dir), config, pd.DataFrame(), metrics, EPOCHS, 0.01)
    return train


if __name__ == "__main__":
    seed, *args = sys.argv[1:]
    objective_mod.train = fake_train(random.Random(int(seed)))
    from cli import cli

    cli(args, prog_name="cli.py")
