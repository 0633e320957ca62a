"""Series for the forecasting tests: a real one shipped with the tests, and files written with a known shape.

data/co2_mauna_loa_weekly.csv is statsmodels 0.15.0's `statsmodels/datasets/co2/co2.csv`, copied byte for byte
from its wheel (no download): weekly atmospheric CO2 at Mauna Loa, March 1958 - December 2001, in ppmv, public
domain (Keeling and Whorf, Scripps Institution of Oceanography, via CDIAC). It rises over the decades, so the
last quarter of it (the test part) lies above every value of the first half (the training part), and it has a
yearly cycle of about 52 weeks. 59 weeks have no reading; `write_co2_csv` fills them by linear interpolation.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import numpy as np

CO2 = Path(__file__).parent / "data" / "co2_mauna_loa_weekly.csv"


def co2_weekly() -> tuple[list[str], np.ndarray]:
    """The CO2 series as ISO dates and ppmv, the missing weeks filled by linear interpolation."""
    with open(CO2) as file:
        rows = list(csv.reader(file))[1:]
    dates = [datetime.strptime(date, "%Y%m%d").date().isoformat() for date, _ in rows]
    values = np.array([float(value) if value else np.nan for _, value in rows])
    known = ~np.isnan(values)
    values[~known] = np.interp(np.flatnonzero(~known), np.flatnonzero(known), values[known])
    return dates, values


def write_co2_csv(path: Path) -> Path:
    dates, values = co2_weekly()
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["date", "co2"])
        writer.writerows([date, f"{value:.2f}"] for date, value in zip(dates, values))
    return path


def write_long_format_csv(path: Path, names=("alpha", "beta", "gamma"), rows=(300, 240, 360)) -> Path:
    """Three daily series in long format, one row per series and day, sorted by day then series (so the series
    interleave, as an export of several tickers does). Each series' `price` is its own level (100, 1000,
    10000 for alpha, beta, gamma) plus its row number within the series, and `volume` the row number
    again: a window that crossed two series would mix levels a thousand apart. Series start on different
    days, so each day holds one, two or three rows."""
    from datetime import date, timedelta

    start = date(2024, 1, 1)
    lines = []
    for index, (name, count) in enumerate(zip(names, rows)):
        first_day = 20 * index
        for row in range(count):
            lines.append((first_day + row, index, name, 10.0 ** (index + 2) + row + 0.5 * np.sin(row), row))
    lines.sort()
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["day", "ticker", "price", "volume"])
        for day, _, name, price, row in lines:
            writer.writerow([(start + timedelta(days=day)).isoformat(), name, f"{price:.4f}", row])
    return path
