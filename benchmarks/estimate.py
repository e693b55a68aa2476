"""The estimate against the search it estimates: ``search --estimate`` (``study.tuning.search.estimate``)
projects a small real search's wall time, then that search runs and is timed, in the same process.

The search is the real thing (``run_search``: scratch regime, mini_xception, trial 0 the defaults, 6
trials capped at 3 epochs, random sampler, no pruner, so that the projection without pruning is the
figure to compare) on the generated sample. The ratio is the measured wall time over the estimate's
(1.00x: exact); the goal is within 25% either way.
"""
from __future__ import annotations

import time


from benchmarks.common import Row, log, main, sample, scratch_dir, seconds
from study.tuning.request import SearchRequest
from study.tuning.search import estimate, run_search

GOAL = 0.25


def run(quick: bool) -> list[Row]:
    trials, max_epochs = (2, 1) if quick else (6, 3)
    per_class = 20 if quick else 120
    data = str(sample(per_class=per_class))
    folder = scratch_dir() / "estimate"
    folder.mkdir(exist_ok=True)
    request = SearchRequest(regime="scratch", trials=trials, data=data, sampler="random", pruner="none",
                            max_epochs=max_epochs, base={"backbone": "mini_xception", "seed": 0},
                            storage=f"sqlite:///{folder}/estimate.db", study="estimate", runs_dir=str(folder / "runs"))
    log(f"estimate: probing, then a {trials}-trial search capped at {max_epochs} epochs")
    projected = estimate(request)
    log(projected.line())
    started = time.perf_counter()
    run_search(request)
    measured = time.perf_counter() - started
    ratio = measured / projected.unpruned
    return [Row(f"estimate: wall time of a {trials}-trial search (mini_xception, sample {per_class}/class, "
                f"--max-epochs {max_epochs}, no pruner) against search --estimate",
                f"{seconds(projected.unpruned)} projected", f"{seconds(measured)} measured", ratio,
                f"within {GOAL:.0%}", abs(ratio - 1.0) <= GOAL, ratio_text=f"{ratio:.2f}x of the estimate")]


if __name__ == "__main__":
    main(run)
