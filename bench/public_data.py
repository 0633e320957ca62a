"""The launcher on public real data that ships inside packages (issue 24's closing table), before and after issue 24.

    python -m bench.public_data                 # every data set, before and after (6-9 min on 2 busy cores)
    python -m bench.public_data --only cars     # one data set (cars, co2, seattle_temps, stocks)

The data, read where the installed wheels put it (never downloaded):
  cars           vega_datasets 0.9.0's `_data/cars.json`: 406 cars of 1970-1982, Miles_per_Gallon missing for 8 and
                 Horsepower for 6, a categorical Origin (USA, Europe, Japan), a Name (311 distinct) and a Year date.
                 Written here to a CSV in the run's folder with a JSON null as an empty cell, as a user's export has
                 it. Regression of Miles_per_Gallon (`data=csv`, model=mlp).
  co2            Weekly CO2 at Mauna Loa 1958-2001 from statsmodels' wheel (tests/keras_practice/data/, 59 missing
                 weeks interpolated): a trend (the test part lies above every training value) and a yearly season.
  seattle_temps  vega_datasets' `_data/seattle-temps.csv`: hourly temperatures (degF) in Seattle in 2010, a daily
                 cycle; one hour is missing where daylight-saving time starts (data.allow_gaps=true, both sides).
  stocks         vega_datasets' `_data/stocks.csv`: long format (symbol, date, price), monthly closes of 5 tickers
                 2000-2010 (GOOG from 2004), trending.

Each job is `launch.py` in a subprocess, read back from its metrics.json. "before" runs `launch.py` from a `git
archive` of the commit before issue 24's forecasting work (`--before`, default 49ac6a3^; bench/machine.py
launcher_tree), with the options a user had then; "after" runs an archive of HEAD (`--after`) with the options
issue 24 added.
On the same split, recomputed here from the file with numpy (the launcher's rules: tables a seeded permutation,
series the last quarter of each series in time order) and independently of the trainers' code:
  tables   scikit-learn's mean predictor (DummyRegressor), Ridge (alpha picked on the validation rows) and
           HistGradientBoosting, both behind SimpleImputer (median + missing indicator) and OneHotEncoder.
  series   the naive forecast (last observed value), the seasonal-naive one (the latest value at the target's point
           of the season, inside the window) and a Ridge on the same lag windows (the window's sampled values,
           predicting the change from the latest; alpha picked on the validation windows). The launcher's own
           naive and seasonal-naive MAE are checked against these.

Prints a markdown table and one JSON object last; results.json and every job's log go to bench/runs/public-data-*/.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import subprocess
import time
from datetime import datetime
from importlib.resources import files
from pathlib import Path

import numpy as np

from bench.machine import cpu_flags, launcher_tree, load_average, machine_info
from bench.measure import BENCH, PYTHON, ROOT, log

BEFORE_REF = "49ac6a3^"  # the commit before issue 24's data work (49ac6a3: series; d4c5da5: tables)
SPLIT_SEED = 12345  # trainers/splits.py's: tables are split by this permutation whatever the job's seed
CO2 = ROOT / "tests" / "keras_practice" / "data" / "co2_mauna_loa_weekly.csv"
COMMON = ["trainer.verbose=2", "storage.uri=null"]
CARS_COLUMNS = ["Name", "Miles_per_Gallon", "Cylinders", "Displacement", "Horsepower", "Weight_in_lbs",
                "Acceleration", "Year", "Origin"]


def vega_file(name: str) -> Path:
    """A file of the vega_datasets wheel, where pip installed it."""
    return Path(str(files("vega_datasets") / "_data" / name))


# ------------------------------------------------------------------ the files as a user has them
def write_cars_csv(path: Path, complete_only: bool = False) -> Path:
    """cars.json as a CSV, a JSON null an empty cell; complete_only: without the rows that have one (what a user had
    to do by hand before the launcher imputed)."""
    cars = json.loads(vega_file("cars.json").read_text())
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CARS_COLUMNS)
        for car in cars:
            if complete_only and any(car[name] is None for name in CARS_COLUMNS):
                continue
            writer.writerow(["" if car[name] is None else car[name] for name in CARS_COLUMNS])
    return path


def write_co2_csv(path: Path) -> Path:
    from tests.keras_practice.forecast_data import write_co2_csv as write

    return write(path)


# ------------------------------------------------------------------ the table's baselines
def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    return rows[0], rows[1:]


def holdout(count: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """trainers/splits.py's rule, written again: a permutation, the last `fraction` of it held out."""
    order = rng.permutation(count)
    cut = int(round(count * (1.0 - fraction)))
    return order[:cut], order[cut:]


def table_split(count: int, test_fraction: float = 0.2, val_fraction: float = 0.15) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SPLIT_SEED)
    keep, test = holdout(count, test_fraction, rng)
    train, validation = holdout(len(keep), val_fraction, rng)
    return {"training": keep[train], "validation": keep[validation], "test": test}


def cars_baselines(path: Path, target: str = "Miles_per_Gallon") -> dict:
    """scikit-learn on the launcher's split of the CSV: rows without a target dropped (data.missing_target=drop),
    then data=csv's permutation. The Year date as its year; Name and Origin one-hot."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    table = table[table[target].notna()].reset_index(drop=True)
    y = table[target].astype(float).to_numpy()
    numeric = ["Cylinders", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"]
    x = table[numeric].astype(float)
    x["year"] = pd.to_datetime(table["Year"]).dt.year.astype(float)
    categorical = ["Name", "Origin"]
    x[categorical] = table[categorical].fillna("missing")
    split = table_split(len(table))

    def encoder():
        return ColumnTransformer([
            ("numbers", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
             [*numeric, "year"]),
            ("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ])

    def mae(model, part="test") -> float:
        rows = split[part]
        return float(np.mean(np.abs(model.predict(x.iloc[rows]) - y[rows])))

    train = split["training"]
    fitted = {alpha: make_pipeline(encoder(), Ridge(alpha=alpha)).fit(x.iloc[train], y[train])
              for alpha in (0.1, 1.0, 10.0, 100.0)}
    alpha = min(fitted, key=lambda value: mae(fitted[value], "validation"))
    boosted = make_pipeline(encoder(), HistGradientBoostingRegressor(random_state=0)).fit(x.iloc[train], y[train])
    mean = DummyRegressor().fit(x.iloc[train], y[train])
    return {
        "rows": len(table), "test_rows": len(split["test"]), "missing_feature_rows": int(x[numeric].isna().any(
            axis=1).sum()),
        "mean_predictor_test_mae": mae(mean), "ridge_test_mae": mae(fitted[alpha]), "ridge_alpha": alpha,
        "hist_gradient_boosting_test_mae": mae(boosted),
    }


# ------------------------------------------------------------------ the series' baselines
def read_series(path: Path, target: str, time_column: str, time_format: str | None, series_id: str | None):
    """Per series (in order of first appearance), its target values in file order; the file's own rows are read
    here with csv, not with the trainers' loader."""
    header, rows = read_csv(path)
    position = {name: index for index, name in enumerate(header)}
    by_series: dict[str, list[tuple[datetime | str, float]]] = {}
    for row in rows:
        name = row[position[series_id]] if series_id else ""
        moment = datetime.strptime(row[position[time_column]], time_format) if time_format else row[
            position[time_column]]
        by_series.setdefault(name, []).append((moment, float(row[position[target]])))
    for values in by_series.values():
        assert all(a[0] < b[0] for a, b in zip(values, values[1:])), "a series out of time order"
    return {name: np.array([value for _, value in values]) for name, values in by_series.items()}


def series_windows(values: np.ndarray, part: str, window: int, sampling: int, horizon: int,
                   test_fraction: float = 0.25, val_fraction: float = 0.333) -> tuple[np.ndarray, np.ndarray]:
    """The latest row of every example inside `part` of one series, and the rows it reads (latest last)."""
    count = len(values)
    num_test = round(count * test_fraction)
    rest = count - num_test
    num_validation = round(rest * val_fraction)
    first, end = {"training": (0, rest - num_validation), "validation": (rest - num_validation, rest),
                  "test": (rest, count)}[part]
    latest = np.arange(first + window - 1, end - horizon)
    steps = math.ceil(window / sampling)
    return latest, latest[:, None] - sampling * np.arange(steps - 1, -1, -1)


def series_baselines(series: dict[str, np.ndarray], window: int, sampling: int, horizon: int,
                     season: int | None) -> dict:
    """Naive, seasonal-naive and Ridge test MAE over every test window of every series."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def examples(part):
        inputs, changes, latest_values, truth, seasonal = [], [], [], [], []
        for values in series.values():
            latest, reads = series_windows(values, part, window, sampling, horizon)
            inputs.append(values[reads])
            latest_values.append(values[latest])
            truth.append(values[latest + horizon])
            changes.append(values[latest + horizon] - values[latest])
            if season:
                back = -(-horizon // season) * season  # whole seasons back from the target, at least the horizon
                seasonal.append(values[latest + horizon - back])
        joined = [np.concatenate(parts) if parts else None for parts in (inputs, changes, latest_values, truth,
                                                                         seasonal)]
        return dict(zip(("inputs", "changes", "latest", "truth", "seasonal"), joined))

    parts = {part: examples(part) for part in ("training", "validation", "test")}
    test = parts["test"]

    def ridge(alpha):
        return make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(parts["training"]["inputs"],
                                                                       parts["training"]["changes"])

    def mae(model, part):
        data = parts[part]
        return float(np.mean(np.abs(data["latest"] + model.predict(data["inputs"]) - data["truth"])))

    fitted = {alpha: ridge(alpha) for alpha in (0.01, 0.1, 1.0, 10.0, 100.0)}
    alpha = min(fitted, key=lambda value: mae(fitted[value], "validation"))
    return {
        "test_windows": len(test["truth"]),
        "naive_test_mae": float(np.mean(np.abs(test["truth"] - test["latest"]))),
        "seasonal_naive_test_mae": float(np.mean(np.abs(test["truth"] - test["seasonal"]))) if season else None,
        "ridge_test_mae": mae(fitted[alpha], "test"), "ridge_alpha": alpha,
        "test_range": [float(test["truth"].min()), float(test["truth"].max())],
        "training_range": [float(parts["training"]["truth"].min()), float(parts["training"]["truth"].max())],
    }


# ------------------------------------------------------------------ the experiments
MODELS = {"lstm": ["model=lstm", "model.units=[16]"], "mlp": ["model=mlp"]}


def series_runs(job: list[str], epochs: dict, name: str, after: list[str], before_models=("lstm", "mlp")) -> list:
    """The launcher on a series: each model as before (the level, the options of then) and with issue 24's options."""
    def args(model, extra):
        return [*job, *MODELS[model], f"trainer.epochs={epochs[name if model == 'lstm' else 'mlp']}", *extra]

    before = [{"side": "before", "label": f"{model}, level", "args": args(model, [])} for model in before_models]
    return before + [{"side": "after", "label": f"{model}, {' '.join(after)}", "args": args(model, after)}
                     for model in MODELS]


def experiments(data_dir: Path, epochs: dict) -> list[dict]:
    """Per data set: its file(s), the launcher's runs before and after issue 24, and how to score the baselines."""
    cars, cars_complete = write_cars_csv(data_dir / "cars.csv"), write_cars_csv(data_dir / "cars_complete.csv", True)
    co2 = write_co2_csv(data_dir / "co2.csv")
    car_job = ["data=csv", "data.target=Miles_per_Gallon", "model=mlp", f"trainer.epochs={epochs['cars']}"]
    co2_job = ["data=timeseries", f"data.path={co2}", "data.target=co2", "data.window=104", "data.sampling_rate=4",
               "data.horizon=4"]
    temps = vega_file("seattle-temps.csv")
    temps_job = ["data=timeseries", f"data.path={temps}", "data.target=temp", "data.time_format='%Y/%m/%d %H:%M'",
                 "data.allow_gaps=true", "data.window=48", "data.sampling_rate=2", "data.horizon=6"]
    stocks = vega_file("stocks.csv")
    stocks_job = ["data=timeseries", f"data.path={stocks}", "data.target=price", "data.time_format='%b %d %Y'",
                  "data.time_column=date", "data.window=12", "data.sampling_rate=1", "data.horizon=1"]
    return [
        {"name": "cars", "what": "table: 406 cars, 14 with a missing cell, categories (Origin, Name), a date (Year); "
                                 "Miles_per_Gallon (regression, test MAE in mpg)",
         "kind": "table",
         "runs": [
             {"side": "before", "label": "mlp, the file as it is", "args": [*car_job, f"data.path={cars}"],
              "baselines": {"path": cars}},
             {"side": "before", "label": "mlp, incomplete rows removed by hand", "baselines": {"path": cars_complete},
              "args": [*car_job, f"data.path={cars_complete}"]},
             {"side": "after", "label": "mlp, the file as it is (data.impute=median, Year as calendar features)",
              "args": [*car_job, f"data.path={cars}"], "baselines": {"path": cars}},
         ]},
        {"name": "co2", "what": "weekly CO2 at Mauna Loa 1958-2001 (statsmodels): trend and yearly season; "
                                "4 weeks ahead, ppmv",
         "kind": "series", "geometry": {"window": 104, "sampling": 4, "horizon": 4, "season": 52},
         "read": {"path": co2, "target": "co2", "time_column": "date", "time_format": "%Y-%m-%d", "series_id": None},
         "runs": series_runs(co2_job, epochs, "co2", ["data.target_transform=delta", "data.season=52"])},
        {"name": "seattle_temps", "what": "hourly temperature normals, Seattle 2010 (vega_datasets): a smooth daily "
                                          "cycle; 6 h ahead, degF",
         "kind": "series", "geometry": {"window": 48, "sampling": 2, "horizon": 6, "season": 24},
         "read": {"path": temps, "target": "temp", "time_column": "date", "time_format": "%Y/%m/%d %H:%M",
                  "series_id": None},
         "runs": series_runs(temps_job, epochs, "seattle_temps", ["data.target_transform=delta", "data.season=24"])},
        {"name": "stocks", "what": "monthly prices of 5 tickers 2000-2010 in long format (vega_datasets): "
                                   "trending; 1 month ahead, USD",
         "kind": "series", "geometry": {"window": 12, "sampling": 1, "horizon": 1, "season": 12},
         "read": {"path": stocks, "target": "price", "time_column": "date", "time_format": "%b %d %Y",
                  "series_id": "symbol"},
         "runs": series_runs(stocks_job, epochs, "stocks", ["data.series_id=symbol", "data.target_transform=delta",
                                                            "data.season=12"], before_models=("lstm",))},
    ]


def run_job(tree: Path, args: list[str], job_dir: Path, env: dict, seed: int = 0) -> dict:
    """`python launch.py ARGS` from `tree`; its metrics.json, or the line it was refused with."""
    cmd = [PYTHON, "launch.py", *COMMON, f"seed={seed}", *args, f"hydra.run.dir={job_dir}"]
    started = time.monotonic()
    with open(f"{job_dir}.log", "w") as out:
        out.write("$ " + shlex.join(cmd) + "\n")
        out.flush()
        status = subprocess.run(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=1800).returncode
    record = {"command": shlex.join(["python", "launch.py", *args]), "status": status,
              "wall_s": round(time.monotonic() - started, 1), "log": f"{job_dir}.log"}
    if status == 0:
        metrics = json.loads((job_dir / "metrics.json").read_text())
        record.update(summary=metrics["summary"], test=metrics["test"], features=metrics.get("features"),
                      naive_forecast=metrics.get("naive_forecast"), epochs_trained=len(metrics.get("history", [])))
    else:
        lines = [line for line in Path(f"{job_dir}.log").read_text().splitlines() if line.strip()]
        record["refused"] = lines[-1] if lines else ""
    return record


def check_agreement(record: dict, baselines: dict) -> dict:
    """The launcher's naive and seasonal-naive test MAE against the ones recomputed here (relative difference)."""
    naive = record.get("naive_forecast")
    if not naive:
        return {}
    checks = {"naive": abs(naive["test_mae"] - baselines["naive_test_mae"]) / baselines["naive_test_mae"]}
    if naive.get("seasonal_naive"):
        seasonal = baselines["seasonal_naive_test_mae"]
        checks["seasonal_naive"] = abs(naive["seasonal_naive"]["test_mae"] - seasonal) / seasonal
    return checks


def run_experiment(experiment: dict, trees: dict, out_dir: Path, env: dict, seed: int = 0) -> dict:
    results = []
    baselines = None
    if experiment["kind"] == "series":
        read, geometry = experiment["read"], experiment["geometry"]
        values = read_series(read["path"], read["target"], read["time_column"], read["time_format"], read["series_id"])
        baselines = series_baselines(values, geometry["window"], geometry["sampling"], geometry["horizon"],
                                     geometry["season"])
    for index, run in enumerate(experiment["runs"]):
        job_dir = out_dir / f"{experiment['name']}-{index}-{run['side']}"
        record = {"side": run["side"], "label": run["label"],
                  **run_job(trees[run["side"]], run["args"], job_dir, env, seed)}
        if experiment["kind"] == "table":
            record["baselines"] = cars_baselines(run["baselines"]["path"])
            if record["status"] == 0:
                record["launcher_test_mae_on_this_split"] = launcher_mae_on_this_split(job_dir,
                                                                                       run["baselines"]["path"])
        else:
            record["agreement"] = check_agreement(record, baselines)
        log(f"{experiment['name']} {run['side']} ({run['label']}): "
            + (f"test MAE {record['test']['mae']:.4g} in {record['wall_s']} s" if record["status"] == 0
               else f"status {record['status']}: {record['refused'][:200]}"))
        results.append(record)
    return {"name": experiment["name"], "what": experiment["what"], "baselines": baselines, "runs": results}


def launcher_mae_on_this_split(job_dir: Path, path: Path, target: str = "Miles_per_Gallon") -> float:
    """The job's best.keras on the test rows of the split recomputed here (table_split), fed the raw columns as the
    CSV has them (a missing number as NaN; a date as the calendar features the model takes in its place, or as
    text to a model that takes it as categories): equal to the job's test MAE when both split alike."""
    import keras
    import pandas as pd
    import tensorflow as tf

    table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    table = table[table[target].notna()].reset_index(drop=True)
    rows = table.iloc[table_split(len(table))["test"]]
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    inputs = {}
    for layer in model.inputs:
        name = layer.name
        column, _, part = name.rpartition("_")
        if name not in rows and column in rows:  # a date's calendar feature
            dates = pd.to_datetime(rows[column])
            values = dates.dt.day_of_week if part == "weekday" else getattr(dates.dt, part)
            inputs[name] = tf.constant(values.to_numpy("float32")[:, None])
        elif layer.dtype == "string":
            inputs[name] = tf.constant(rows[name].fillna("").to_numpy(str)[:, None])
        else:
            inputs[name] = tf.constant(rows[name].astype("float32").to_numpy()[:, None])
    predicted = model.predict(inputs, verbose=0)[:, 0]
    return float(np.mean(np.abs(predicted - rows[target].astype(float).to_numpy())))


# ------------------------------------------------------------------ the table
def _figure(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if abs(value) >= 10 else f"{value:.{digits}f}"


def markdown(results: list[dict]) -> str:
    lines = ["| data set | side | launcher run | launcher test MAE | scikit-learn | naive | seasonal naive | beats |",
             "|---|---|---|---|---|---|---|---|"]
    for experiment in results:
        for run in experiment["runs"]:
            if experiment["baselines"] is None:  # a table: scikit-learn's models, the mean as its "naive"
                base = run["baselines"]
                sklearn = (f"ridge {_figure(base['ridge_test_mae'])}, "
                           f"HGB {_figure(base['hist_gradient_boosting_test_mae'])}")
                naive, seasonal = f"mean {_figure(base['mean_predictor_test_mae'])}", "-"
                beats = "-"
                if run["status"] == 0:
                    mae = run["test"]["mae"]
                    beaten = [name for name, key in (("mean", "mean_predictor_test_mae"), ("ridge", "ridge_test_mae"),
                                                     ("HGB", "hist_gradient_boosting_test_mae")) if mae < base[key]]
                    beats = ", ".join(beaten) or "none"
            else:
                base = experiment["baselines"]
                sklearn = f"ridge {_figure(base['ridge_test_mae'])}"
                naive, seasonal = _figure(base["naive_test_mae"]), _figure(base["seasonal_naive_test_mae"])
                beats = "-"
                if run["status"] == 0:
                    mae = run["test"]["mae"]
                    beaten = [name for name, value in (("naive", base["naive_test_mae"]),
                                                       ("seasonal naive", base["seasonal_naive_test_mae"]),
                                                       ("ridge", base["ridge_test_mae"])) if value and mae < value]
                    beats = ", ".join(beaten) or "none"
            launcher = _figure(run["test"]["mae"]) if run["status"] == 0 else f"refused: {_short(run['refused'])}"
            lines.append(f"| {experiment['name']} | {run['side']} | {run['label']} | {launcher} | {sklearn} | "
                         f"{naive} | {seasonal} | {beats} |")
    return "\n".join(lines)


def _short(line: str, limit: int = 160) -> str:
    line = line.split("Error: ", 1)[-1].replace("|", "/")
    return line if len(line) <= limit else line[:limit] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.public_data",
                                     description="issue 24's closing table: public real data, before and after")
    parser.add_argument("--only", nargs="*", choices=["cars", "co2", "seattle_temps", "stocks"])
    parser.add_argument("--before", default=BEFORE_REF, help="git ref of the launcher before issue 24")
    parser.add_argument("--after", default="HEAD",
                        help="git ref of the launcher after (default HEAD; 'worktree': the working tree as it is)")
    parser.add_argument("--skip-before", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="the jobs' seed (the splits do not depend on it)")
    parser.add_argument("--epochs", type=json.loads, default={},
                        help='per data set (the lstm; "mlp": every series\' mlp), e.g. \'{"cars": 200}\' (defaults: '
                             'cars 200, co2 5, seattle_temps 3, stocks 20, mlp 15)')
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    epochs = {"cars": 200, "co2": 5, "seattle_temps": 3, "stocks": 20, "mlp": 15, **args.epochs}
    out_dir = args.out or BENCH / "runs" / time.strftime("public-data-%Y%m%d-%H%M%S")
    (out_dir / "data").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    info = machine_info(env)
    after_tree, after_rev = launcher_tree(None if args.after == "worktree" else args.after, out_dir)
    trees, revisions = {"after": after_tree}, {"after": after_rev}
    if not args.skip_before:
        trees["before"], revisions["before"] = launcher_tree(args.before, out_dir)
    log(f"machine: {info}; launcher before {revisions.get('before')}, after {after_rev}; logs in {out_dir}")
    chosen = [experiment for experiment in experiments(out_dir / "data", epochs)
              if not args.only or experiment["name"] in args.only]
    results = []
    for experiment in chosen:
        experiment["runs"] = [run for run in experiment["runs"] if run["side"] in trees]
        results.append(run_experiment(experiment, trees, out_dir, env, args.seed))
        (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = markdown(results)
    conditions = {"revisions": revisions, "epochs": epochs, "seed": args.seed, "cpu_model": info["cpu_model"],
                  "cpu_flags": sorted(cpu_flags() & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"}),
                  "logical_cores": info["logical_cores"], "tensorflow": info["tensorflow"],
                  "load_average_end": load_average(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (out_dir / "results.json").write_text(json.dumps({"conditions": conditions, "results": results}, indent=1,
                                                     default=str))
    (out_dir / "table.md").write_text(table + "\n")
    print(table)
    print(json.dumps({"conditions": conditions, "out": str(out_dir)}))


if __name__ == "__main__":
    main()
