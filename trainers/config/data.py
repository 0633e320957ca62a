"""The data group's schema: `DataConfig`, the settings of every loader (trainers/datasets.py) side by side,
with the task a data set poses and the kind of examples it holds, which decides the models that can serve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, OmegaConf

from .fields import AT_LEAST_1, CHECK, FRACTION, Choice, at_least, checked, fraction, refuse, rule


class Task(Choice):
    binary = "binary"
    multiclass = "multiclass"
    multilabel = "multilabel"
    regression = "regression"


class Impute(Choice):
    """data=csv: what a missing feature cell becomes. median: the training split's median for a number (plus a
    was-missing indicator input for a column with missing cells in training), a category of its own for a
    category; both inside the model. drop_rows: rows with a missing feature cell are left out. refuse: the
    job stops, listing the cells."""

    median = "median"
    drop_rows = "drop_rows"
    refuse = "refuse"


class MissingTarget(Choice):
    """data=csv: rows whose target cell is missing are dropped (with a count in the log) or refused."""

    drop = "drop"
    refuse = "refuse"


class DateColumns(Choice):
    """data=csv: a column of dates becomes numeric calendar features, or is excluded."""

    features = "features"
    exclude = "exclude"


# The usual spellings of a missing cell (compared with the cell's surrounding spaces removed).
MISSING_VALUES = ("", "NA", "N/A", "NaN", "null")
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "space": " "}


def delimiter_character(value) -> str:
    """data.delimiter as the one character csv.reader takes (`tab` and `\\t` name a tab, `space` a space)."""
    return DELIMITER_NAMES.get(str(value), str(value))


def _check_delimiter(key: str, value) -> None:
    if len(delimiter_character(value)) != 1 or delimiter_character(value) in "\"\r\n":
        refuse(key, value, "one character such as , ; | (or tab, space), or null to detect it", "';'")


DECIMAL_MARKS = {"point": ".", "comma": ","}


def _check_decimal(key: str, value) -> None:
    if str(value) not in DECIMAL_MARKS:
        refuse(key, value, "point, comma, or null to detect decimal commas in a file not delimited by commas",
               "comma")


def _check_missing_values(key: str, value) -> None:
    spellings = [str(item) for item in value]
    padded = [item for item in spellings if item != item.strip()]
    if padded:
        refuse(key, spellings, f"spellings without surrounding spaces (cells are compared stripped; {padded[0]!r} "
               "never matches)", "['',NA,-999]")
    repeated = sorted({item for item in spellings if spellings.count(item) > 1})
    if repeated:
        refuse(key, spellings, f"each spelling once ({', '.join(map(repr, repeated))} repeats)", "['',NA,-999]")


class TargetTransform(Choice):
    """data=timeseries: what the model's body learns. level: the target itself. delta: its change from the last
    observed value, which the model adds back inside itself, so a saved model still takes raw windows and returns
    levels; a forecast that survives a trend that takes the series beyond its training values."""

    level = "level"
    delta = "delta"


class InputKind(Choice):
    """What a data set's examples look like, which decides the layers a model puts in front of its body.
    "text" is raw strings: the model itself turns them into token ids (TextVectorization), so a saved
    model takes strings as they are. "sequence" is a window of numeric readings (time steps x features)."""

    image = "image"
    tokens = "tokens"
    text = "text"
    tabular = "tabular"
    sequence = "sequence"


@dataclass
class DataConfig:
    name: str = MISSING
    task: Task = MISSING
    input_kind: InputKind = MISSING
    # A local file in the format of the named loader; null means the loader's own source.
    path: Optional[str] = None
    # Fraction of the training split held out for validation when the data set has no validation split.
    val_fraction: float = rule(0.1, fraction, FRACTION, "0.1")
    # Fraction held out for testing when the data set has no test split.
    test_fraction: float = rule(0.2, fraction, FRACTION, "0.2")
    # Cap on training examples (null: all), for quick runs.
    max_train_samples: Optional[int] = rule(None, at_least(1), AT_LEAST_1, "1000")
    cache: bool = True
    shuffle_buffer: int = 10_000
    # Token data only.
    num_words: int = 10_000
    sequence_length: int = 200
    # Image folders only: images are resized to image_size x image_size with this many channels.
    image_size: int = rule(64, at_least(1), AT_LEAST_1, "224")
    channels: int = rule(3, lambda value: value in (1, 3, 4), "1 (grey), 3 (RGB) or 4 (RGBA)", "3")
    # Folder data sets: the class sub-folders to use, in label order (null: every sub-folder, sorted).
    class_names: Optional[list[str]] = None
    # CSV and time series: the column to predict (time series: a column or a list of columns), and
    # columns that are not features (ids, free text).
    target: Any = None
    exclude_columns: list[str] = field(default_factory=list)
    # CSV only: text columns become categories by themselves; these numeric-looking columns too (zip codes).
    categorical_columns: list[str] = field(default_factory=list)
    # A categorical column with at most this many categories is one-hot encoded, a larger one embedded
    # (model.embedding_dim); both with one out-of-vocabulary slot for categories unseen in training.
    max_one_hot_categories: int = rule(
        20, at_least(0), "an integer of at least 0 (0: embed every categorical column)", "20"
    )
    # CSV only. Cells that count as missing (after stripping spaces; a number that reads as NaN always
    # does), what missing feature cells become (Impute), what happens to rows with a missing target,
    # whether date columns become calendar features. CSV and time series: the delimiter (null: detected
    # among , ; tab |).
    missing_values: list[str] = field(
        default_factory=lambda: list(MISSING_VALUES), metadata={CHECK: _check_missing_values}
    )
    impute: Impute = Impute.median
    missing_target: MissingTarget = MissingTarget.drop
    dates: DateColumns = DateColumns.features
    delimiter: Optional[str] = checked(None, _check_delimiter)
    # CSV and time series: the decimal mark of number cells. null: a column written 12,5 (decimal commas, at least
    # one, no point) is read as numbers when the delimiter is not a comma; comma: such columns always; point: never.
    decimal: Optional[str] = checked(None, _check_decimal)
    # Time series only: the column holding each row's time (null: the first column), its strptime format
    # (null: ISO 8601, jena_climate's "01.01.2009 00:10:00", or plain numbers), and the window geometry in
    # rows: a prediction sees the last `window` rows, keeping every `sampling_rate`-th one (ending with the
    # latest), and predicts the target `horizon` rows after the latest.
    time_column: Optional[str] = None
    time_format: Optional[str] = None
    window: int = rule(720, at_least(1), AT_LEAST_1, "720")
    sampling_rate: int = rule(6, at_least(1), AT_LEAST_1, "6")
    horizon: int = rule(144, at_least(1), AT_LEAST_1, "144")
    # Time steps missing from the file are refused; true treats the rows as evenly spaced anyway.
    allow_gaps: bool = False
    # What the model learns: the target's level, or its change from the last observed value (TargetTransform).
    target_transform: TargetTransform = TargetTransform.level
    # Rows per season (e.g. 24 for hourly readings with a daily cycle, 12 for monthly ones with a yearly one):
    # adds the seasonal-naive baseline (the latest value at the same point of the season) beside the naive one.
    season: Optional[int] = rule(
        None, at_least(2), "an integer of at least 2 (rows per season, e.g. 24 for hourly readings and a daily "
        "cycle), or null", "24"
    )
    # A long-format file holding several series (one row per series and time): the column naming each row's
    # series. Windows never cross series; each series is split in time order on its own.
    series_id: Optional[str] = None
    # data=tfrecord only (trainers/config/tfrecord_spec.py): globs of TFRecord files relative to data.path (val/test
    # null: whole training files held out), the features each record holds and the model reads, and its label.
    files: str = "*.tfrecord*"
    val_files: Optional[str] = None
    test_files: Optional[str] = None
    features: Any = None
    label: Any = None


# data=csv's own settings and their defaults: another data set refuses a value other than the default.
CSV_ONLY = {"missing_values": list(MISSING_VALUES), "impute": Impute.median, "missing_target": MissingTarget.drop,
            "dates": DateColumns.features}
# Read by every data set that reads a delimited text file (data=csv and data=timeseries); refused elsewhere.
DELIMITED_FILE_ONLY = {"delimiter": None, "decimal": None}
DELIMITED_FILE_KINDS = ("csv", "timeseries")


# data=timeseries's own settings and their defaults: another data set refuses a value other than the default.
TIMESERIES_ONLY = {"target_transform": TargetTransform.level, "season": None, "series_id": None}


def seasonal_lag(season: int, horizon: int) -> int:
    """How many rows before the latest reading the seasonal-naive forecast reads: the target's time less whole
    seasons, as few as put it at or before the latest reading."""
    return -(-horizon // season) * season - horizon


def target_columns(target) -> list[str]:
    """data.target as a list of column names: one name, or several for a time series."""
    if target is None:
        return []
    return [str(name) for name in target] if OmegaConf.is_list(target) or isinstance(target, list) else [str(target)]
