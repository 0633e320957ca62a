"""data=csv's options for missing cells, dates and delimiters: a value that does not fit is refused before
training with the field named, what was received and what is allowed."""

from __future__ import annotations

import pytest

from tests.unit.test_config_compose import compose_job, refusal


@pytest.mark.parametrize(
    "override,expected",
    [
        ("data.impute=mean", "Invalid value for `data.impute`: received 'mean'. Allowed: one of median, drop_rows, "
                             "refuse."),
        ("data.missing_target=keep", "Invalid value for `data.missing_target`: received 'keep'. Allowed: one of drop, "
                                     "refuse."),
        ("data.dates=drop", "Invalid value for `data.dates`: received 'drop'. Allowed: one of features, exclude."),
        ("data.delimiter=ab", "Invalid value for `data.delimiter`: received 'ab'. Allowed: one character such as"),
        ("data.decimal=dot", "Invalid value for `data.decimal`: received 'dot'. Allowed: point, comma, or null"),
        ("data.missing_values=[NA,NA]", "Invalid value for `data.missing_values`: received ['NA', 'NA']. Allowed: "
                                        "each spelling once ('NA' repeats)."),
        ("data.missing_values=[' NA']", "Invalid value for `data.missing_values`: received [' NA']. Allowed: "
                                        "spellings without surrounding spaces"),
    ],
)
def test_a_bad_csv_option_is_refused_naming_the_field(override, expected):
    assert refusal("data=csv", "model=mlp", override).startswith(expected)


@pytest.mark.parametrize("override", ["data.impute=refuse", "data.missing_values=[NA]", "data.dates=exclude",
                                      "data.missing_target=refuse"])
def test_csv_options_are_refused_for_other_data(override):
    field = override.split("=")[0]
    for data in ("data=digits", "data=timeseries"):
        assert refusal(data, override).startswith(f"Invalid value for `{field}`")
        assert "only data=csv reads it" in refusal(data, override)


def test_the_delimiter_is_read_by_csv_and_timeseries_only():
    assert refusal("data=digits", "data.delimiter=';'") == (
        "Invalid value for `data.delimiter`: received ';'. Allowed: its default (null) with data=digits: only "
        "data=csv and data=timeseries read it. Fix it on the command line or in the config, e.g. "
        "`data.delimiter=null`.")
    assert compose_job("data=timeseries", "model=lstm", "data.delimiter=tab").data.delimiter == "tab"
    assert refusal("data=digits", "data.decimal=comma").startswith(
        "Invalid value for `data.decimal`: received 'comma'. Allowed: its default (null) with data=digits: only "
        "data=csv and data=timeseries read it.")
    assert compose_job("data=timeseries", "model=lstm", "data.decimal=comma").data.decimal == "comma"


def test_csv_defaults_and_delimiter_names():
    data = compose_job("data=csv", "model=mlp", "data.delimiter=tab").data
    assert list(data.missing_values) == ["", "NA", "N/A", "NaN", "null"]
    assert (data.impute, data.missing_target, data.dates, data.delimiter) == ("median", "drop", "features", "tab")
    from trainers.config.data import delimiter_character

    assert delimiter_character("tab") == "\t" and delimiter_character("space") == " "
    assert delimiter_character(";") == ";"
