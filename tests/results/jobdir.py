"""A job folder written the way trainers/job.py writes one, epoch by epoch, without training: the
uploader's tests need exact control over which epoch improved and how big the checkpoint is."""

from __future__ import annotations

import json
import os
from pathlib import Path


class JobFolder:
    def __init__(self, path: Path, metric: str = "val_loss", mode: str = "min"):
        self.path, self.metric, self.mode = path, metric, mode
        self.best_value = None
        self.best_epoch = None
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
        (path / "tensorboard" / "train").mkdir(parents=True, exist_ok=True)
        (path / "resolved_config.yaml").write_text(f"metric: {metric}\nlr: 0.001\n")
        self.events = path / "tensorboard" / "train" / "events.out.tfevents.1.host.1.v2"
        self.events.write_bytes(b"")

    def end_epoch(self, epoch: int, value: float, checkpoint: bytes | None = None) -> tuple[int, dict, str]:
        """Write what an epoch leaves behind; returns the epoch hook's arguments."""
        better = self.best_value is None or (value < self.best_value if self.mode == "min" else value > self.best_value)
        if better:
            self.best_value, self.best_epoch = value, epoch
            (self.path / "checkpoints" / "best.keras").write_bytes(
                checkpoint or os.urandom(4096) + f"epoch {epoch}".encode()
            )
        with open(self.events, "ab") as events:
            events.write(f"epoch {epoch} {value}\n".encode())
        state = self.path / "state"
        state.mkdir(exist_ok=True)
        (state / "progress.json").write_text(
            json.dumps({"epochs_completed": epoch, "best_value": self.best_value, "best_epoch": self.best_epoch})
        )
        return epoch, {self.metric: value}, str(state)

    def finish(self) -> None:
        (self.path / "metrics.json").write_text(json.dumps({"metric": self.metric, "best_value": self.best_value}))
