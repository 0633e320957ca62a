"""Searches on the two-node Ray cluster: Hydra's range() run as a grid, a model-based search (Optuna's TPE with
ASHA) over every sampled form with max_concurrent_trials respected, and population-based training whose
exploit copies another trial's state and changes the learning rate from the next epoch."""

from __future__ import annotations

import json

import pytest
import yaml

from .conftest import QUICK, read_json, sweep


def _board(sweep_dir):
    return json.loads((sweep_dir / "leaderboard.json").read_text())


def _overrides(sweep_dir, job) -> dict:
    items = yaml.safe_load((sweep_dir / str(job) / ".hydra" / "overrides.yaml").read_text())
    return dict(item.split("=", 1) for item in items if "=" in item)


def test_range_and_choice_enumerate_as_in_hydra(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    result = sweep(["seed=range(0,2)", "model=choice(mlp)", *QUICK, "trainer.epochs=1"], sweep_dir,
                   address=two_node_cluster.address)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith("Grid: 2 jobs on Ray Tune")
    rows = _board(sweep_dir)["trials"]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 2
    assert [_overrides(sweep_dir, row["job"])["seed"] for row in rows] == ["0", "1"]


@pytest.mark.slow  # about 2 minutes on 2 busy cores
def test_optuna_with_asha_samples_every_form_one_trial_at_a_time(tmp_path, two_node_cluster):
    sweep_dir = tmp_path / "sweep"
    result = sweep(["hparams_search=optuna_asha", "lr=tag(log,interval(1e-4,1e-2))", "model.dropout=interval(0,0.5)",
                    "trainer.batch_size=tag(int,interval(16,64))", "model=choice(cnn,mlp)", "seed=range(0,3)",
                    "hydra.sweeper.num_samples=4", "hydra.sweeper.seed=1", "hydra.launcher.max_concurrent_trials=1",
                    "trainer.callbacks.early_stopping.enabled=false", *QUICK, "trainer.epochs=3"], sweep_dir,
                   address=two_node_cluster.address, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith("Search: 4 trials on Ray Tune (4 samples), OptunaSearch with "
                                                    "ASHAScheduler")
    rows = _board(sweep_dir)["trials"]
    assert len(rows) == 4
    for row in rows:
        values = _overrides(sweep_dir, row["job"])
        assert 1e-4 <= float(values["lr"]) <= 1e-2 and 0 <= float(values["model.dropout"]) <= 0.5
        assert 16 <= int(values["trainer.batch_size"]) <= 64 and values["model"] in ("cnn", "mlp")
        assert values["seed"] in ("0", "1", "2")
        if row["status"] == "STOPPED":
            assert row["events"] == [f"stopped by ASHAScheduler after epoch {row['epochs']}"]
    # max_concurrent_trials=1: no two trials ran at the same time.
    spans = sorted((attempt["started"], attempt["ended"]) for row in rows
                   for attempt in read_json(sweep_dir / str(row["job"]) / "trial.json")["attempts"]
                   if "ended" in attempt)
    assert all(end <= next_start + 1.0 for (_, end), (next_start, _) in zip(spans, spans[1:])), spans


def _learning_rates_in_tensorboard(job_dir) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rates = {}
    for events in sorted((job_dir / "tensorboard" / "train").glob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0})
        accumulator.Reload()
        if "epoch_learning_rate" in accumulator.Tags()["tensors"]:
            for event in accumulator.Tensors("epoch_learning_rate"):
                import tensorflow as tf

                rates[event.step] = float(tf.make_ndarray(event.tensor_proto))
    return rates


@pytest.mark.slow  # about 2.5 minutes on 2 busy cores
def test_pbt_exploit_continues_from_another_trials_weights_with_the_changed_lr(tmp_path, two_node_cluster):
    """Two trials, bottom and top half: at each perturbation the worse one copies the better one's state
    (model, optimizer, epoch) and continues with its lr perturbed; TensorBoard shows the new lr. Synchronous
    PBT: without it a trial that starts a few seconds late can find the other one finished (seen here)."""
    sweep_dir = tmp_path / "sweep"
    result = sweep(["hparams_search=pbt", "lr=tag(log,interval(1e-5,3e-2))", "hydra.sweeper.num_samples=2",
                    "hydra.sweeper.seed=0", "hydra.sweeper.scheduler.quantile_fraction=0.5",
                    "hydra.sweeper.scheduler.synch=true",
                    "trainer.callbacks.early_stopping.enabled=false", "model=cnn", *QUICK, "data.max_train_samples=300",
                    "trainer.epochs=6"], sweep_dir, address=two_node_cluster.address, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = _board(sweep_dir)["trials"]
    assert [row["status"] for row in rows] == ["COMPLETED"] * 2
    exploits = [(row, entry) for row in rows
                for entry in read_json(sweep_dir / str(row["job"]) / "trial.json").get("lineage", [])]
    assert exploits, f"no exploit happened: {rows}"
    row, entry = exploits[-1]
    job_dir, donor_dir = sweep_dir / str(row["job"]), sweep_dir / str(entry["job"])
    assert any(event.startswith(f"exploited job {entry['job']} at its epoch {entry['epoch']}")
               for event in row["events"])
    history = json.loads((job_dir / "metrics.json").read_text())["history"]
    donor = {item["epoch"]: item for item in json.loads((donor_dir / "metrics.json").read_text())["history"]}
    assert [item["epoch"] for item in history] == [1, 2, 3, 4, 5, 6]
    # Up to the exploit the trial's history is the donor's: it continued from the donor's weights (unless the
    # donor itself was later overwritten by an exploit of its own).
    if not read_json(donor_dir / "trial.json").get("lineage"):
        for item in history[:entry["epoch"]]:
            assert item["val_loss"] == pytest.approx(donor[item["epoch"]]["val_loss"])
    new_lr = float(dict(item.split("=", 1) for item in entry["overrides"])["lr"])
    old_lr = float(dict(item.split("=", 1) for item in entry["overrides_before"])["lr"])
    assert new_lr != old_lr
    assert history[entry["epoch"]]["learning_rate"] == pytest.approx(new_lr, rel=1e-5)
    rates = _learning_rates_in_tensorboard(job_dir)
    after = [rate for step, rate in rates.items() if step >= entry["epoch"]]  # Keras numbers epochs from 0
    assert after and after[0] == pytest.approx(new_lr, rel=1e-5), rates
    # The exchanged copies are gone once the sweep ended; each job keeps its own state.
    assert not list((sweep_dir / "tune").glob("*/checkpoint_*"))
