"""The storage group's schema: where a job's results are copied while it runs, and how often."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class StorageConfig:
    # gs://BUCKET/PREFIX or a local folder (relative: to the directory launch.py started in); null: no copies.
    # Checked by cluster.store before training; the trainer never reads this block.
    uri: Optional[str] = "results"
    # TensorBoard event files are copied this often while the job trains (and once at the end).
    sync_seconds: float = 5.0
    # Time one transfer may take, retries included, before it counts as failed (retried at the next sync).
    upload_timeout_seconds: float = 300.0
    # At the end of the job, how long to wait for the last uploads before giving up on them.
    close_timeout_seconds: float = 600.0
    # Upload the resumable state (model, optimizer, epoch) after every epoch, so a trial retried on
    # another node, or a rerun on another machine, continues from its last epoch instead of epoch 0.
    upload_state: bool = True
