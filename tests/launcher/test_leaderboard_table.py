"""The console leaderboard shows what differs: overrides every trial shares on one line, a column per swept key.
Issue 20: every row repeated `storage.uri=gs\\://...` and every other shared override."""

from __future__ import annotations

from cluster.launcher.leaderboard import Row, shared_and_swept, table


def rows(*trials) -> list[Row]:
    return [Row(job=job, trial_id=f"t{job}", status="COMPLETED", value=value, best_epoch=2, epochs=2, wall_time_s=6.0,
                overrides=overrides, job_dir=f"/sweep/{job}", checkpoint=None)
            for job, (value, overrides) in enumerate(trials)]


SWEEP = rows((0.55, r"model=cnn lr=0.0023219446794046513 storage.uri=gs\://b/x"),
             (0.28, r"model=lstm lr=0.0023219446794046513 storage.uri=gs\://b/x"),
             (0.91, r"model=cnn lr=0.0001 storage.uri=gs\://b/x data.path=a\ b.csv"))


def test_shared_overrides_once_and_a_column_per_swept_key():
    shared, swept = shared_and_swept(SWEEP)
    assert shared == {"storage.uri": r"gs\://b/x"}
    assert swept == ["model", "lr", "data.path"]
    lines = table(SWEEP, "val_loss", "min").splitlines()
    assert lines[0] == r"All trials: storage.uri=gs\://b/x"
    assert lines[1].split() == ["job", "model", "lr", "data.path", "val_loss", "(min)", "best", "epoch", "wall", "time",
                                "status"]
    assert lines[3].split()[:5] == ["0", "cnn", "0.002322", "-", "0.5500"]
    assert lines[4].split()[:5] == ["*", "1", "lstm", "0.002322", "-"]
    assert lines[5].split()[:6] == ["2", "cnn", "0.0001", "a\\", "b.csv", "0.9100"]
    assert sum("gs\\://b/x" in line for line in lines) == 1
    # The best trial's own values in full, ready to copy.
    assert lines[-1].startswith("* best: job 1 (model=lstm lr=0.0023219446794046513), val_loss=0.2800 at epoch 2")


def test_a_single_trial_keeps_its_overrides_in_one_column():
    lines = table(SWEEP[:1], "val_loss", "min").splitlines()
    assert lines[0].split()[:3] == ["job", "overrides", "val_loss"]
    assert r"model=cnn lr=0.0023219446794046513 storage.uri=gs\://b/x" in lines[2]


def test_the_tasks_summary_is_a_column_beside_the_metric(tmp_path):
    """Issue 24: a forecasting sweep shows whether each model beats the naive forecast, not only val_loss."""
    import csv
    import json

    from cluster.launcher.leaderboard import write

    board = rows((0.55, "model=lstm"), (0.28, "model=gru"))
    board[0].summary = {"test_mae": 3.25, "naive_test_mae": 2.0, "beats_naive": False}
    board[1].summary = {"test_mae": 1.5, "naive_test_mae": 2.0, "beats_naive": True}
    lines = table(board, "val_loss", "min").splitlines()
    assert lines[0].split() == ["job", "model", "val_loss", "(min)", "best", "epoch", "test_mae", "naive_test_mae",
                                "beats_naive", "wall", "time", "status"]
    assert lines[2].split()[:7] == ["0", "lstm", "0.5500", "2", "3.2500", "2.0000", "no"]
    assert lines[3].split()[:8] == ["*", "1", "gru", "0.2800", "2", "1.5000", "2.0000", "yes"]
    json_path, csv_path = write(board, "val_loss", "min", tmp_path)
    assert json.loads(json_path.read_text())["trials"][1]["summary"]["beats_naive"] is True
    written = list(csv.DictReader(csv_path.open()))
    assert [row["beats_naive"] for row in written] == ["False", "True"] and written[0]["test_mae"] == "3.25"
