"""data=timeseries: windows of past readings in time order, a target `horizon` rows ahead, statistics from
the training rows only (inside the model), and the naive forecast's error beside the model's. The signal is
a noisy daily cycle (tests/keras_practice/makers.py): six hours ahead it has moved a quarter turn, so the
last observed value is a poor forecast that a model reading the window must beat."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests.conftest import run_launch
from tests.keras_practice.makers import write_seasonal_csv
from trainers.schema import ConfigError, DataConfig
from trainers.series_windows import first_rows, naive_forecast_mae
from trainers.timeseries import read_series, training_statistics, window_dataset

ROWS, WINDOW, SAMPLING_RATE, HORIZON = 1200, 48, 2, 6
GEOMETRY = [f"data.window={WINDOW}", f"data.sampling_rate={SAMPLING_RATE}", f"data.horizon={HORIZON}"]


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory):
    return write_seasonal_csv(tmp_path_factory.mktemp("data") / "seasonal.csv", rows=ROWS)


def series_cfg(path, **values):
    fields = {"name": "timeseries", "task": "regression", "input_kind": "sequence", "path": str(path),
              "target": "temperature", "window": WINDOW, "sampling_rate": SAMPLING_RATE, "horizon": HORIZON,
              "val_fraction": 0.333, "test_fraction": 0.25, **values}
    return OmegaConf.structured(DataConfig(**fields))


def readings(path) -> tuple[list[str], np.ndarray]:
    with open(path) as file:
        rows = list(csv.reader(file))
    return rows[0], np.array([[float(cell) for cell in row[1:]] for row in rows[1:]], "float32")


def forecast_job(seasonal, tmp_path_factory, *overrides):
    job_dir = tmp_path_factory.mktemp("forecast_job")
    result = run_launch("data=timeseries", f"data.path={seasonal}", *GEOMETRY, "trainer.epochs=3",
                        "trainer.verbose=0", "storage.uri=null", f"hydra.run.dir={job_dir}", *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_dir, json.loads((job_dir / "metrics.json").read_text()), result.stdout


@pytest.fixture(scope="module")
def mlp_job(seasonal, tmp_path_factory):
    return forecast_job(seasonal, tmp_path_factory, "model=mlp", "data.target=temperature")


# ------------------------------------------------------------------ the user's runs
def test_the_forecast_beats_the_naive_forecast_and_the_report_says_so(mlp_job):
    _, metrics, stdout = mlp_job
    naive = metrics["naive_forecast"]
    # A quarter turn of an amplitude-10 cycle: the last observed value is about 9 degrees off.
    assert naive["test_mae"] > 7 and naive["validation_mae"] > 7
    assert naive["model_test_mae"] == metrics["test"]["mae"] < 0.35 * naive["test_mae"]
    assert naive["beats_naive"] is True
    line = re.search(r"Forecast test MAE ([\d.]+) vs naive forecast \(last observed value\) ([\d.]+): "
                     r"the model beats it", stdout)
    assert line, stdout
    assert float(line.group(2)) == pytest.approx(naive["test_mae"], rel=1e-3)


def test_the_saved_model_forecasts_from_raw_readings(mlp_job, seasonal):
    """Windows built here from the CSV, independently of the loader: the last 48 rows, every 2nd ending
    with the latest; the temperature 6 rows after the latest. The checkpoint scores them as the job did."""
    import keras

    job_dir, metrics, _ = mlp_job
    _, values = readings(seasonal)
    test_start = ROWS - ROWS // 4
    latest = np.arange(test_start + WINDOW - 1, ROWS - HORIZON)
    steps = latest[:, None] - SAMPLING_RATE * np.arange(WINDOW // SAMPLING_RATE - 1, -1, -1)
    windows, truth = values[steps], values[latest + HORIZON, 0]
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    predicted = model.predict(windows, verbose=0)
    assert predicted.shape == (len(windows), 1)
    assert np.mean(np.abs(predicted[:, 0] - truth)) == pytest.approx(metrics["test"]["mae"], rel=1e-3)
    assert np.mean(np.abs(values[latest, 0] - truth)) == pytest.approx(metrics["naive_forecast"]["test_mae"], rel=1e-4)


def test_lstm_forecasts_two_columns_at_once(seasonal, tmp_path_factory):
    import keras

    job_dir, metrics, _ = forecast_job(seasonal, tmp_path_factory, "model=lstm", "model.units=[16]",
                                       "data.target=[temperature,humidity]", "lr=3e-3")
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    assert model.input.shape[1:] == (WINDOW // SAMPLING_RATE, 2) and model.output.shape[1:] == (2,)
    naive = metrics["naive_forecast"]
    # Humidity follows the temperature (x -2), so the naive forecast misses both by a lot.
    assert naive["beats_naive"] and naive["model_test_mae"] < 0.5 * naive["test_mae"]


@pytest.mark.slow
def test_every_forecasting_model_beats_the_naive_forecast_in_one_sweep(seasonal, tmp_path):
    """The README's sweep: lstm, gru, cnn and mlp on the same windows, each scored against the naive forecast."""
    sweep_dir = tmp_path / "sweep"
    result = run_launch("-m", "data=timeseries", f"data.path={seasonal}", "data.target=temperature", *GEOMETRY,
                        "trainer.epochs=3", "model=lstm,gru,cnn,mlp", "storage.uri=null",
                        f"hydra.sweep.dir={sweep_dir}", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in range(4):
        naive = json.loads((sweep_dir / str(job) / "metrics.json").read_text())["naive_forecast"]
        assert naive["beats_naive"] and naive["model_test_mae"] < 0.35 * naive["test_mae"], (job, naive)


# ------------------------------------------------------------------ windows, splits, statistics
def test_parts_follow_time_order_and_no_window_straddles_two(seasonal):
    series = read_series(series_cfg(seasonal))
    assert series.parts == {"training": (0, 600), "validation": (600, 900), "test": (900, 1200)}
    for part, (start, end) in series.parts.items():
        starts = first_rows(series, part)
        assert starts.min() == start and starts.max() + series.layout.target_offset == end - 1
        assert len(starts) == end - start - (WINDOW + HORIZON) + 1


def test_a_window_holds_every_second_of_the_last_48_rows_and_the_target_6_rows_on(seasonal):
    series = read_series(series_cfg(seasonal))
    _, values = readings(seasonal)
    window, target = next(iter(window_dataset(series, "validation")))
    latest = 600 + WINDOW - 1
    np.testing.assert_array_equal(window.numpy(), values[latest - np.arange(46, -1, -2)])
    np.testing.assert_array_equal(target.numpy(), values[latest + HORIZON, :1])


def test_normalisation_statistics_come_from_the_training_rows_only(seasonal):
    series = read_series(series_cfg(seasonal))
    _, values = readings(seasonal)
    statistics = training_statistics(series)
    np.testing.assert_allclose(statistics["feature_mean"], values[:600].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(statistics["feature_variance"], values[:600].var(axis=0), rtol=1e-4)
    assert statistics["target_mean"] == pytest.approx(values[:600, 0].mean(), rel=1e-5)
    assert not np.allclose(statistics["feature_mean"], values.mean(axis=0), rtol=1e-4)


def test_naive_forecast_is_the_last_observed_value(seasonal):
    series = read_series(series_cfg(seasonal))
    _, values = readings(seasonal)
    latest = np.arange(900 + WINDOW - 1, ROWS - HORIZON)
    expected = np.mean(np.abs(values[latest + HORIZON, 0] - values[latest, 0]))
    assert naive_forecast_mae(series, "test") == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ bad input, refused before training
def edited(seasonal, tmp_path, line: int, column: int, value: str):
    """A copy of the series with one cell changed (line numbers as a text editor shows them)."""
    with open(seasonal) as file:
        rows = list(csv.reader(file))
    rows[line - 1][column] = value
    copy = tmp_path / "edited.csv"
    with open(copy, "w", newline="") as file:
        csv.writer(file).writerows(rows)
    return copy


def without_lines(seasonal, tmp_path, first: int, last: int):
    """A copy of the series with lines first..last (as a text editor numbers them) deleted."""
    lines = seasonal.read_text().splitlines(keepends=True)
    copy = tmp_path / "gapped.csv"
    copy.write_text("".join(lines[: first - 1] + lines[last:]))
    return copy


def refused(cfg) -> str:
    with pytest.raises(ConfigError) as error:
        read_series(cfg)
    return str(error.value)


def test_a_missing_time_column_lists_the_columns(seasonal):
    message = refused(series_cfg(seasonal, time_column="clock"))
    assert message == f"data.time_column=clock: no such column in {seasonal}. Columns: time, temperature, humidity."


def test_a_missing_target_column_lists_the_columns(seasonal):
    message = refused(series_cfg(seasonal, target=["temperature", "pressure"]))
    assert message == f"data.target=pressure: no such column in {seasonal}. Columns: time, temperature, humidity."


def test_a_non_numeric_reading_names_line_and_column(seasonal, tmp_path):
    message = refused(series_cfg(edited(seasonal, tmp_path, line=40, column=2, value="n/a")))
    assert ("column 'humidity' is not numeric (line 40: 'n/a')" in message
            and "data.exclude_columns=[humidity]" in message)


def test_a_window_longer_than_a_part_is_refused(seasonal):
    message = refused(series_cfg(seasonal, window=400, sampling_rate=4))
    assert "data.window=400 with data.horizon=6 needs 406 rows in each part, but the validation part" in message
    assert "has 300 (of 1200 rows" in message


def test_a_gap_in_time_order_names_the_line(seasonal, tmp_path):
    # Lines 101-103 (2024-01-05 03:00 to 05:00) deleted: line 101 is now 06:00, 4 hours after line 100.
    gapped = without_lines(seasonal, tmp_path, 101, 103)
    message = refused(series_cfg(gapped))
    assert "1 gap(s) in time order in column 'time' (the rows are 1 h apart)" in message
    assert "line 101 ('2024-01-05 06:00:00') follows '2024-01-05 02:00:00' after 4 h, about 3 row(s) missing" in message
    assert "data.allow_gaps=true" in message
    # Once allowed, the rows are taken as they are.
    assert len(read_series(series_cfg(gapped, allow_gaps=True)).features) == ROWS - 3


def test_rows_out_of_time_order_are_refused(seasonal, tmp_path):
    message = refused(series_cfg(edited(seasonal, tmp_path, line=50, column=0, value="2024-01-01 00:30:00")))
    assert ("rows are not in time order: line 50 (time '2024-01-01 00:30:00') does not come after line 49 "
            "('2024-01-02 23:00:00')" in message)


def test_an_unreadable_time_names_its_line(seasonal, tmp_path):
    message = refused(series_cfg(edited(seasonal, tmp_path, line=7, column=0, value="yesterday")))
    assert ("time column 'time', line 7: 'yesterday' does not read like the column's other values (ISO 8601 times)"
            in message)


def test_jena_climate_times_are_read_without_a_format(tmp_path):
    table = tmp_path / "jena.csv"
    table.write_text('"Date Time","p (mbar)","T (degC)"\n' + "".join(
        f"01.01.2009 {hour:02d}:{minute:02d}:00,996.5,{-8 + 0.01 * (6 * hour + minute // 10):.2f}\n"
        for hour in range(24) for minute in range(0, 60, 10)
    ))
    series = read_series(series_cfg(table, target="T (degC)", window=12, sampling_rate=6, horizon=6))
    assert series.feature_names == ["p (mbar)", "T (degC)"] and series.layout.num_steps == 2


@pytest.mark.parametrize("delimiter,setting,decimal_comma", [(";", None, False), (";", None, True),
                                                              ("\t", None, False), ("\t", "tab", True),
                                                              ("|", "|", False)])
def test_a_series_with_another_delimiter_reads_as_its_comma_twin(seasonal, tmp_path, delimiter, setting,
                                                                  decimal_comma):
    """Spreadsheets in many locales write semicolons and decimal commas (14,041); data.delimiter and data.decimal
    null detect both, as for data=csv."""
    with open(seasonal) as file:
        rows = list(csv.reader(file))
    if decimal_comma:
        rows = [rows[0]] + [[row[0]] + [cell.replace(".", ",") for cell in row[1:]] for row in rows[1:]]
    copy = tmp_path / "series.csv"
    with open(copy, "w", newline="") as file:
        csv.writer(file, delimiter=delimiter).writerows(rows)
    ours, comma = read_series(series_cfg(copy, delimiter=setting)), read_series(series_cfg(seasonal))
    assert ours.feature_names == comma.feature_names == ["temperature", "humidity"]
    assert np.array_equal(ours.features, comma.features) and ours.series_parts == comma.series_parts


def test_a_wrong_delimiter_names_the_one_that_fits(seasonal):
    message = refused(series_cfg(seasonal, delimiter=";"))
    assert message == (f"data.target=temperature: no such column in {seasonal}. Columns: time,temperature,humidity. "
                       "With data.delimiter=',' the header has 3 fields.")


def test_launch_refuses_a_gap_with_exit_code_2_before_training(seasonal, tmp_path):
    gapped = without_lines(seasonal, tmp_path, 101, 103)
    result = run_launch("data=timeseries", f"data.path={gapped}", "data.target=temperature", *GEOMETRY, "model=lstm",
                        "storage.uri=null", f"hydra.run.dir={tmp_path / 'job'}")
    assert result.returncode == 2 and "Config error: " in result.stderr and "gap(s) in time order" in result.stderr
    assert "Traceback" not in result.stderr and "Epoch 1/" not in result.stdout
    assert not (tmp_path / "job" / "metrics.json").exists()


@pytest.mark.parametrize(
    "override,message",
    [
        ("data.sampling_rate=1000",
         "Invalid value for `data.sampling_rate`: received 1000. Allowed: at most data.window (720)"),
        ("data.horizon=0", "Invalid value for `data.horizon`: received 0. Allowed: an integer of at least 1"),
    ],
)
def test_bad_window_settings_are_refused_before_tensorflow_loads(seasonal, tmp_path, override, message):
    result = run_launch("data=timeseries", f"data.path={seasonal}", "data.target=temperature", "model=gru", override,
                        "storage.uri=null", f"hydra.run.dir={tmp_path / 'job'}")
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
