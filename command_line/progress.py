"""A rich progress bar per epoch with live metrics, and one printed line per finished epoch.

Keras's ``loss`` and ``val_loss`` are the training objective: the cross-entropy plus the head's L2
penalty, so they are shown as ``loss+L2`` and ``val_loss+L2`` (the evaluated loss of a run's
metrics is the cross-entropy alone).
"""
from __future__ import annotations

import keras
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)


class EpochProgress(keras.callbacks.Callback):
    def __init__(self, phase: str, last_epoch: int) -> None:
        super().__init__()
        self.phase = phase
        self.last_epoch = last_epoch
        self._progress: Progress | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._progress.start()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        assert self._progress is not None
        self._task = self._progress.add_task(
            f"{self.phase} epoch {epoch + 1}/{self.last_epoch}", total=self.params.get("steps"), metrics=""
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        assert self._progress is not None
        self._progress.update(self._task, completed=batch + 1, metrics=_format(logs, ("loss", "accuracy")))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        assert self._progress is not None
        self._progress.remove_task(self._task)
        text = _format(logs, ("loss", "accuracy", "val_loss", "val_accuracy"))
        console.print(f"{self.phase} {epoch + 1}/{self.last_epoch}  {text}", highlight=False)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the live display; also called when training ends with an exception."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _format(logs: dict | None, keys: tuple[str, ...]) -> str:
    logs = logs or {}
    return "  ".join(f"{_SHORT.get(k, k)} {float(logs[k]):.3f}" for k in keys if k in logs)


_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc", "loss": "loss+L2", "val_loss": "val_loss+L2"}
