"""data=csv on real public tables that ship inside installed packages (scikit-learn's iris, wine and linnerud
files), with holes, dates, ids and other dialects made from them: missing cells are declared
(data.missing_values) and imputed inside the model, dropped or refused (data.impute); a missing label is never
a class (data.missing_target); dates become calendar features and id-like columns are excluded, both reported in
metrics.json's `features`; the delimiter is detected or set (data.delimiter); a bad file names its first bad
cells with line and column."""

from __future__ import annotations

import csv
import json
import logging
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import sklearn
from omegaconf import OmegaConf

from tests.conftest import run_launch
from trainers.datasets import load_splits
from trainers.schema import ConfigError, DataConfig
from trainers.splits import SPLIT_SEED

SKLEARN_DATA = Path(sklearn.__file__).parent / "datasets" / "data"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SPECIES = ["setosa", "versicolor", "virginica"]
SPELLINGS = ["NA", "", "N/A", "NaN", "null"]  # data.missing_values' default, used in turn for the holes
START = date(2024, 3, 1)


def iris_rows() -> list[dict]:
    """scikit-learn's bundled iris.csv (150 flowers: 4 measurements in cm and the species id)."""
    with open(SKLEARN_DATA / "iris.csv") as file:
        lines = list(csv.reader(file))[1:]  # its first line is "150,4,setosa,versicolor,virginica"
    return [dict(zip(IRIS_COLUMNS, line[:4]), species=SPECIES[int(line[4])]) for line in lines]


def write_iris_with_holes(path: Path) -> Path:
    """Iris with a text id per plant, the date it was measured, a `size` category (petal width in words), and
    about one cell in eight of the measurements and of `size` missing, spelt in each usual way."""
    rng = np.random.default_rng(7)
    rows = iris_rows()
    spelling = 0
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["plant", "measured", *IRIS_COLUMNS, "size", "species"])
        for number, row in enumerate(rows):
            width = float(row["petal_width"])
            cells = [row[name] for name in IRIS_COLUMNS] + ["small" if width < 0.8 else "mid" if width < 1.7 else "big"]
            for position in range(len(cells)):
                if rng.random() < 0.12:
                    cells[position] = SPELLINGS[spelling % len(SPELLINGS)]
                    spelling += 1
            measured = START + timedelta(days=int(rng.integers(0, 400)))
            writer.writerow([f"plant-{number:03d}", measured.isoformat(), *cells, row["species"]])
    return path


def data_cfg(path, **values):
    values = {"task": "multiclass", "target": "species", **values}
    return OmegaConf.structured(DataConfig(name="csv", input_kind="tabular", path=str(path), val_fraction=0.15,
                                           **values))


def refused(cfg) -> str:
    with pytest.raises(ConfigError) as error:
        load_splits(cfg)
    return str(error.value)


# ------------------------------------------------------------------ training with missing cells (impute)
@pytest.fixture(scope="module")
def iris_job(tmp_path_factory):
    iris = write_iris_with_holes(tmp_path_factory.mktemp("data") / "iris_holes.csv")
    job_dir = tmp_path_factory.mktemp("iris_job")
    result = run_launch("model=mlp", "data=csv", f"data.path={iris}", "data.target=species", "data.task=multiclass",
                        "trainer.epochs=25", "lr=1e-2", "storage.uri=null", f"hydra.run.dir={job_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return iris, job_dir, json.loads((job_dir / "metrics.json").read_text()), result


def raw_columns(path: Path, rows: np.ndarray) -> dict:
    """Rows of the file as the saved model takes them, with their missing cells as written: a missing number is
    NaN, a missing category its own spelling ('NA', '', 'N/A', ...), a date its calendar features."""
    import tensorflow as tf

    with open(path) as file:
        everything = list(csv.DictReader(file))
    table = [everything[index] for index in rows]

    def number(cell: str) -> float:
        return float("nan") if cell in SPELLINGS else float(cell)

    days = [date.fromisoformat(row["measured"]) for row in table]
    columns = {
        "measured_year": [day.year for day in days], "measured_month": [day.month for day in days],
        "measured_day": [day.day for day in days], "measured_weekday": [day.weekday() for day in days],
        **{name: [number(row[name]) for row in table] for name in IRIS_COLUMNS},
    }
    columns = {name: tf.constant(np.array(values, "float32")[:, None]) for name, values in columns.items()}
    columns["size"] = tf.constant(np.array([row["size"] for row in table], str)[:, None])
    return columns


def test_missing_cells_are_filled_inside_the_model(iris_job):
    import keras

    iris, job_dir, metrics, result = iris_job
    features = metrics["features"]
    assert features["plant"].startswith("excluded: id-like (a distinct value in each of the 150 rows)")
    assert features["measured"] == ("date (ISO 8601) as calendar features measured_year, measured_month, "
                                    "measured_day, measured_weekday (model inputs in its place)")
    assert features["measured_month"] == "numeric"
    assert features["petal_length"].startswith("numeric (")
    assert "missing in training: median" in features["petal_length"]
    assert features["size"].startswith("one_hot (4 categories, one of them for missing cells:")
    log = (job_dir / "launch.log").read_text()
    assert "What each column became: plant: excluded: id-like" in log and "column 'measured': date" in log
    assert metrics["test"]["accuracy"] >= 0.8  # iris is easy even with one cell in eight missing

    # best.keras takes the test rows as written (NA, '', N/A... in them) and scores them as evaluation did.
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras", safe_mode=True)
    test_rows = np.random.default_rng(SPLIT_SEED).permutation(150)[120:]  # load_splits' test part (0.2 of 150)
    splits = load_splits(data_cfg(iris))
    raw = raw_columns(iris, test_rows)
    assert np.isnan(raw["petal_length"].numpy()).any() and set(raw["size"].numpy()[:, 0]) & {b"NA", b"", b"N/A"}
    scored = model.evaluate(raw, splits.y_test, return_dict=True, verbose=0)
    assert scored["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert scored["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)
    import tensorflow as tf

    from trainers.tabular import table_columns

    evaluated = {name: tf.constant(column) for name, column in table_columns(splits.x_test).items()}
    np.testing.assert_allclose(model.predict(raw, verbose=0), model.predict(evaluated, verbose=0), rtol=1e-5, atol=1e-6)
    # Every spelling of a missing category is the same category; a missing number is its median plus the flag.
    spelt = {spelling: dict(raw, size=tf.constant(np.full((len(test_rows), 1), spelling))) for spelling in SPELLINGS}
    predictions = [model.predict(columns, verbose=0) for columns in spelt.values()]
    for other in predictions[1:]:
        np.testing.assert_allclose(other, predictions[0], rtol=1e-5, atol=1e-6)
    gaps = dict(raw, sepal_width=tf.constant(np.full((30, 1), np.nan, "float32")))
    assert np.isfinite(model.predict(gaps, verbose=0)).all()


# ------------------------------------------------------------------ drop_rows, refuse, missing labels
def test_drop_rows_leaves_out_rows_with_a_missing_feature(tmp_path, caplog):
    iris = write_iris_with_holes(tmp_path / "iris.csv")
    with open(iris) as file:
        rows = list(csv.DictReader(file))
    complete = sum(all(row[name] not in SPELLINGS for name in [*IRIS_COLUMNS, "size"]) for row in rows)
    with caplog.at_level(logging.WARNING, logger="trainers.csv_table"):
        splits = load_splits(data_cfg(iris, impute="drop_rows"))
    assert len(splits.x_train) + len(splits.x_val) + len(splits.x_test) == complete < 150
    assert f"{150 - complete} row(s) with a missing feature cell dropped (data.impute=drop_rows)" in caplog.text
    assert not np.isnan(np.stack([splits.x_train[name] for name in IRIS_COLUMNS])).any()
    assert "" not in set(splits.x_train["size"])


def test_refuse_lists_the_missing_cells_with_line_and_column(tmp_path):
    iris = write_iris_with_holes(tmp_path / "iris.csv")
    message = refused(data_cfg(iris, impute="refuse"))
    assert "feature cells are missing: line 2, column" in message or "feature cells are missing: line" in message
    assert message.count("line ") == 20 and "more)" in message  # the first 20, then how many besides
    assert "(data.impute=refuse; missing spellings: '', 'NA', 'N/A', 'NaN', 'null')" in message


def test_a_missing_label_is_dropped_with_a_count_never_a_class(tmp_path, caplog):
    rows = iris_rows()
    table = tmp_path / "labels.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*IRIS_COLUMNS, "species"])
        for number, row in enumerate(rows):
            writer.writerow([row[name] for name in IRIS_COLUMNS] + [["", "NA"][number % 2] if number % 25 == 3 else
                                                                     row["species"]])
    with caplog.at_level(logging.INFO, logger="trainers.csv_table"):
        splits = load_splits(data_cfg(table))
    assert len(splits.x_train) + len(splits.x_val) + len(splits.x_test) == 144
    assert "6 row(s) with a missing 'species' dropped (data.missing_target=drop), lines 5, 30, 55, 80, 105, 130" \
        in caplog.text
    assert "classes of 'species' in label order: ['setosa', 'versicolor', 'virginica']" in caplog.text
    message = refused(data_cfg(table, missing_target="refuse"))
    assert message.startswith(f"{table}: 6 rows have no target value: line 5, column 'species': 'NA'; line 30, "
                              "column 'species': ''; line 55,")
    assert "data.missing_target=drop" in message


def test_declared_spellings_replace_the_defaults(tmp_path):
    table = tmp_path / "sentinel.csv"
    table.write_text("area,rooms,price\n" + "".join(f"{50 + i},{-999 if i % 4 == 0 else i % 5},{100 + i}\n"
                                                      for i in range(40)))
    splits = load_splits(data_cfg(table, task="regression", target="price", missing_values=["-999"]))
    rooms = np.concatenate([splits.x_train[:, 1], splits.x_val[:, 1], splits.x_test[:, 1]])
    assert np.isnan(rooms).sum() == 10 and np.nanmin(rooms) >= 0
    # Without the declaration -999 is a number like any other.
    plain = load_splits(data_cfg(table, task="regression", target="price"))
    assert not np.isnan(plain.x_train).any() and plain.x_train[:, 1].min() == -999


# ------------------------------------------------------------------ column kinds
def test_all_numeric_tables_report_their_features_too(tmp_path):
    from trainers.pipeline import _adapted_to_training_split

    wine = tmp_path / "wine.csv"
    with open(SKLEARN_DATA / "wine_data.csv") as source, open(wine, "w", newline="") as file:
        lines = list(csv.reader(source))[1:]
        writer = csv.writer(file)
        writer.writerow([f"m{index}" for index in range(13)] + ["cultivar"])
        writer.writerows(lines)
    cfg = data_cfg(wine, target="cultivar")
    features = _adapted_to_training_split(cfg, load_splits(cfg))["features"]
    assert features == {f"m{index}": "numeric" for index in range(13)}


def test_date_columns_can_be_excluded_and_ambiguous_dates_are_refused(tmp_path):
    iris = write_iris_with_holes(tmp_path / "iris.csv")
    splits = load_splits(data_cfg(iris, dates="exclude"))
    assert splits.x_train.dtype.names == (*IRIS_COLUMNS, "size")
    assert splits.table.notes["measured"] == "excluded: date (ISO 8601; data.dates=exclude)"

    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text("sold,area,price\n" + "".join(f"0{1 + i % 9}/1{i % 3}/2024,{50 + i},{i}\n" for i in range(20)))
    message = refused(data_cfg(ambiguous, task="regression", target="price"))
    assert "column 'sold' holds dates that read both as %m/%d/%Y and as %d/%m/%Y (e.g. '01/10/2024')" in message
    splits = load_splits(data_cfg(ambiguous, task="regression", target="price", time_format="%d/%m/%Y"))
    # year, month, day, weekday and area
    assert splits.x_train.dtype == np.dtype("float32") and splits.x_train.shape[1] == 5
    assert splits.table.inputs[:2] == ["sold_year", "sold_month"]
    assert set(np.concatenate([splits.x_train[:, 1], splits.x_val[:, 1], splits.x_test[:, 1]])) == {10, 11, 12}


def test_a_row_number_column_is_excluded_a_measurement_is_not(tmp_path):
    table = tmp_path / "numbered.csv"
    order = np.random.default_rng(0).permutation(30)
    table.write_text("row,area,price\n" + "".join(f"{1 + order[i]},{50 + 3 * i},{i}\n" for i in range(30)))
    splits = load_splits(data_cfg(table, task="regression", target="price"))
    assert splits.table.inputs == ["area"]  # area is distinct in every row too, but not 1..n
    assert splits.table.notes["row"].startswith("excluded: id-like (the numbers 1..30")


# ------------------------------------------------------------------ dialects and bad files
def test_a_semicolon_file_is_detected(tmp_path, caplog):
    wine = tmp_path / "wine_semicolon.csv"
    with open(SKLEARN_DATA / "wine_data.csv") as source:
        lines = list(csv.reader(source))[1:]
    with open(wine, "w", newline="") as file:
        writer = csv.writer(file, delimiter=";")
        writer.writerow([f"m{index}" for index in range(13)] + ["cultivar"])
        writer.writerows(lines)
    with caplog.at_level(logging.INFO, logger="trainers.csv_table"):
        splits = load_splits(data_cfg(wine, target="cultivar"))
    assert splits.x_train.shape[1] == 13 and "178 rows (delimiter ';')" in caplog.text
    # Read with the wrong delimiter the file is one column: the message says which delimiter would split it.
    message = refused(data_cfg(wine, target="cultivar", delimiter=","))
    assert message.endswith("Columns: m0;m1;m2;m3;m4;m5;m6;m7;m8;m9;m10;m11;m12;cultivar. With data.delimiter=';' "
                            "the header has 14 fields.")


def write_wine(path: Path, delimiter: str, decimal_comma: bool, holes: bool = False) -> Path:
    """scikit-learn's wine table (13 measurements, the cultivar) as a spreadsheet writes it in another locale:
    `delimiter` between fields and, with `decimal_comma`, 14,23 for 14.23."""
    with open(SKLEARN_DATA / "wine_data.csv") as source:
        lines = list(csv.reader(source))[1:]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file, delimiter=delimiter)
        writer.writerow([f"m{index}" for index in range(13)] + ["cultivar"])
        for number, line in enumerate(lines):
            cells = [cell.replace(".", ",") if decimal_comma else cell for cell in line]
            if holes and number % 9 == 0:
                cells[3] = "NA"
            writer.writerow(cells)
    return path


def test_decimal_commas_are_read_as_numbers(tmp_path, caplog):
    point = load_splits(data_cfg(write_wine(tmp_path / "point.csv", ",", False), target="cultivar"))
    german = write_wine(tmp_path / "german.csv", ";", True, holes=True)
    with caplog.at_level(logging.INFO, logger="trainers.csv_table"):
        comma = load_splits(data_cfg(german, target="cultivar"))
    assert point.table.inputs == [f"m{index}" for index in range(13)]
    assert comma.table.inputs == point.table.inputs  # the holes are filled inside the model
    assert "hold decimal commas (12,5), read as numbers" in caplog.text
    holes = np.isnan(comma.x_train[:, 3])
    assert holes.any() and np.array_equal(comma.x_train[:, :13][~holes], point.x_train[~holes])
    assert np.array_equal(comma.x_train[:, :13][:, [0, 1, 2, 4, 5]], point.x_train[:, [0, 1, 2, 4, 5]])
    # data.decimal=point: the cells stay text; a column of numbers with such words is refused, saying what to set.
    message = refused(data_cfg(german, target="cultivar", decimal="point"))
    assert "cells are not numbers in columns of numbers" in message and message.endswith(
        "Numbers written with decimal commas (12,5) are read with data.decimal=comma.")
    # A comma-delimited file may quote its decimal commas; data.decimal=comma reads them (null leaves them).
    quoted = write_wine(tmp_path / "quoted.csv", ",", True)
    assert np.array_equal(load_splits(data_cfg(quoted, target="cultivar", decimal="comma")).x_train, point.x_train)


def test_data_delimiter_reads_a_space_separated_file(tmp_path):
    # scikit-learn's linnerud_exercise.csv as it ships: "Chins Situps Jumps", one space between fields.
    linnerud = SKLEARN_DATA / "linnerud_exercise.csv"
    splits = load_splits(data_cfg(linnerud, task="regression", target="Jumps", delimiter="space", test_fraction=0.25))
    assert splits.x_train.shape[1] == 2 and splits.table.inputs == ["Chins", "Situps"]


def test_a_bad_file_lists_its_first_bad_cells_with_line_and_column(tmp_path):
    rows = iris_rows()
    table = tmp_path / "typos.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*IRIS_COLUMNS, "species"])
        for number, row in enumerate(rows):
            cells = [row[name] for name in IRIS_COLUMNS]
            if number in (4, 40, 90):
                cells[number % 4] = "n.a."
            writer.writerow([*cells, row["species"]])
    message = refused(data_cfg(table))
    assert ("3 cells are not numbers in columns of numbers: line 6, column 'sepal_length': 'n.a.'; line 42, column "
            "'sepal_length': 'n.a.'; line 92, column 'petal_length': 'n.a.'.") in message
    assert "data.missing_values" in message
    # Declared as a spelling of a missing cell, the same file trains.
    splits = load_splits(data_cfg(table, missing_values=["", "NA", "n.a."]))
    assert np.isnan(np.concatenate([splits.x_train[:, 0], splits.x_val[:, 0], splits.x_test[:, 0]])).sum() == 2


def test_rows_of_the_wrong_width_are_listed(tmp_path):
    table = tmp_path / "ragged.csv"
    lines = ["a,b,price"] + [f"{i},{i * 2},{i}" if i % 7 else f"{i},{i * 2},{i},extra" for i in range(1, 200)]
    table.write_text("\n".join(lines) + "\n")
    message = refused(data_cfg(table, task="regression", target="price"))
    assert "28 of 199 rows do not have the header's 3 field(s)" in message
    assert "line 8: 4 fields; line 15: 4 fields" in message and "(and 8 more)" in message


def test_a_time_format_no_column_reads_with_is_refused(tmp_path):
    iris = write_iris_with_holes(tmp_path / "iris.csv")
    message = refused(data_cfg(iris, time_format="%d.%m.%Y"))
    assert message.startswith("Invalid value for `data.time_format`: received '%d.%m.%Y'.")
