"""ONNX and TensorFlow.js exports of the best checkpoint: the ONNX file runs in onnxruntime and the TF.js
graph model in headless Chromium with the TF.js runtime, both predicting what Keras predicts.

The TF.js runtime is the npm package @tensorflow/tfjs (its browser bundle dist/tf.min.js), fetched with
`npm pack` into a temporary folder and served from 127.0.0.1 with the model. Skipped on a developer
machine without npm or chromium, but failing under CI (any non-empty CI, tests/capabilities.py) so a missing
tool cannot pass unnoticed.
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import sklearn
from omegaconf import OmegaConf

from tests import ports
from tests.capabilities import require_programs
from tests.conftest import run_launch
from tests.keras_practice.makers import write_cars_csv, write_seasonal_csv
from tests.tensorboard.test_hparams_browser import BROWSER_INSTALL, CHROMIUM_FLAGS

SKLEARN_DATA = Path(sklearn.__file__).parent / "datasets" / "data"
TFJS_VERSION = "4.22.0"  # the runtime version the graph-model format is checked against
TOLERANCE = 1e-4
FORECAST = ["data=timeseries", "data.target=temperature", "data.window=48", "data.sampling_rate=2",
            "data.horizon=6", "trainer.epochs=1", "trainer.verbose=0", "storage.uri=null"]


@pytest.fixture(scope="module")
def forecast_job(tmp_path_factory):
    """The user's command: an LSTM forecast (a While loop in the graph) exported to ONNX and TF.js."""
    data = write_seasonal_csv(tmp_path_factory.mktemp("data") / "seasonal.csv", rows=600)
    job_dir = tmp_path_factory.mktemp("export_job")
    result = run_launch(*FORECAST, f"data.path={data}", "model=lstm", "model.units=[8]", "export.onnx=true",
                        "export.tfjs=true", f"hydra.run.dir={job_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    readings = np.loadtxt(data, delimiter=",", skiprows=1, usecols=(1, 2), dtype="float32")
    # Eight windows of real readings: 48 rows, every second one, as the job's windows are cut.
    windows = np.stack([readings[start:start + 48:2] for start in range(0, 400, 50)])
    return job_dir, json.loads((job_dir / "metrics.json").read_text()), windows


@pytest.fixture(scope="module")
def wine_with_holes_job(tmp_path_factory):
    """The user's command on a real table with holes: wine's alcohol from its 12 other measurements and cultivar
    (scikit-learn's copy), an empty cell in every 7th row and NA in every 11th, exported in every format. Returns
    the job folder, its best.keras and raw rows whose missing numbers are NaN."""
    import keras

    folder = tmp_path_factory.mktemp("wine")
    with open(SKLEARN_DATA / "wine_data.csv") as source:
        rows = list(csv.reader(source))[1:]  # 13 measurements then the cultivar (0-2); alcohol is the first
    for index, row in enumerate(rows):
        row[1] = "" if index % 7 == 0 else row[1]
        row[4] = "NA" if index % 11 == 0 else row[4]
    table = folder / "wine_with_holes.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["alcohol", *[f"m{index}" for index in range(1, 13)], "cultivar"])
        writer.writerows(rows)
    job = folder / "job"
    result = run_launch("model=mlp", "data=csv", f"data.path={table}", "data.target=alcohol", "trainer.epochs=2",
                        "trainer.verbose=0", "storage.uri=null", "export.saved_model=true", "export.tflite=true",
                        "export.onnx=true", "export.tfjs=true", f"hydra.run.dir={job}")
    assert result.returncode == 0, result.stderr[-3000:]
    raw = np.array([[float(cell) if cell not in ("", "NA") else np.nan for cell in row[1:]] for row in rows[:4]],
                   dtype="float32")
    raw[1, [0, 3, 8]] = np.nan  # holes where training had none, too: the median alone fills them
    return job, keras.models.load_model(job / "checkpoints" / "best.keras"), raw


@pytest.fixture(scope="module")
def exported(forecast_job, wine_with_holes_job, tmp_path_factory):
    """The job's export plus an image CNN (digits) and a token-id MLP (imdb-like), built untrained in this
    process and exported the same way: each kind of model body the exporters meet."""
    import keras

    from trainers.export import export_model
    from trainers.models import build_model
    from trainers.pipeline import DataSpec
    from trainers.schema import CNNConfig, MLPConfig

    job_dir, metrics, windows = forecast_job
    rng = np.random.default_rng(0)
    model = keras.models.load_model(job_dir / "checkpoints" / "best.keras")
    cases = {"lstm_forecast": (model, windows, metrics["export"])}
    wine_job, wine_model, wine_rows = wine_with_holes_job
    cases["wine_with_holes"] = (wine_model, wine_rows, json.loads((wine_job / "metrics.json").read_text())["export"])
    keras.utils.set_random_seed(0)
    for name, model_cfg, spec, x in (
        ("cnn_digits", CNNConfig(name="cnn", filters=[8, 8], dense_units=16),
         DataSpec((8, 8, 1), "image", "multiclass", 10, 100, 32), rng.random((4, 8, 8, 1)).astype("float32")),
        ("mlp_tokens", MLPConfig(name="mlp", units=[16]), DataSpec((20,), "tokens", "binary", 1, 100, 32),
         rng.integers(0, 100, (4, 20)).astype("int32")),
    ):
        model = build_model(OmegaConf.structured(model_cfg), spec)
        folder = tmp_path_factory.mktemp(name)
        cases[name] = (model, x, export_model(model, folder, OmegaConf.create(
            {"saved_model": False, "tflite": False, "onnx": True, "tfjs": True})))
    return cases


def test_the_job_lists_its_exports_beside_the_checkpoint(forecast_job):
    job_dir, metrics, _ = forecast_job
    assert metrics["export"] == {"onnx": str(job_dir / "export" / "model.onnx"),
                                 "tfjs": str(job_dir / "export" / "tfjs" / "model.json")}


@pytest.mark.parametrize("name", ["lstm_forecast", "wine_with_holes", "cnn_digits", "mlp_tokens"])
def test_onnx_runs_in_onnxruntime_and_matches_keras(exported, name):
    import onnxruntime

    model, x, paths = exported[name]
    session = onnxruntime.InferenceSession(paths["onnx"], providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["inputs"]
    assert [node.name for node in session.get_outputs()] == ["predictions"]
    (predicted,) = session.run(None, {"inputs": x})
    expected = model.predict(x, verbose=0)
    assert predicted.shape == expected.shape
    difference = float(np.abs(predicted - expected).max())
    print(f"{name}: ONNX max abs difference {difference:.2e}")
    assert difference < TOLERANCE


def test_tfjs_weights_manifest_covers_every_keras_weight(exported):
    """Without a browser: every Keras weight's values are among the graph model's weights, in the shards."""
    model, _, paths = exported["cnn_digits"]
    folder = Path(paths["tfjs"]).parent
    manifest = json.loads(Path(paths["tfjs"]).read_text())
    assert manifest["format"] == "graph-model"
    (group,) = manifest["weightsManifest"]
    blob = b"".join((folder / path).read_bytes() for path in group["paths"])
    sizes = {"float32": 4, "int32": 4, "bool": 1}
    assert len(blob) == sum(int(np.prod(entry["shape"])) * sizes[entry["dtype"]] for entry in group["weights"])
    values, offset = [], 0
    for entry in group["weights"]:
        count = int(np.prod(entry["shape"]))
        if entry["dtype"] == "float32":
            values.append(np.frombuffer(blob, "<f4", count, offset).reshape(entry["shape"]))
        offset += count * sizes[entry["dtype"]]
    for weight in model.weights:
        kernel = np.asarray(weight.numpy())
        assert any(value.shape == kernel.shape and np.array_equal(value, kernel) for value in values), weight.path


@pytest.fixture(scope="module")
def tfjs_runtime(tmp_path_factory):
    """dist/tf.min.js of @tensorflow/tfjs from the npm registry, unpacked into a temporary folder."""
    require_programs("npm", install="`bash .ci/setup` as root (apt-get install -y npm)")
    folder = tmp_path_factory.mktemp("tfjs_runtime")
    subprocess.run(["npm", "pack", "--silent", f"@tensorflow/tfjs@{TFJS_VERSION}"], cwd=folder, check=True,
                   capture_output=True, timeout=300)
    (tarball,) = folder.glob("*.tgz")
    with tarfile.open(tarball) as archive:
        member = archive.getmember("package/dist/tf.min.js")
        (folder / "tf.min.js").write_bytes(archive.extractfile(member).read())
    tarball.unlink()
    return folder / "tf.min.js"


PAGE = """<!doctype html><html><body><script src="tf.min.js"></script><script>
window.results = {};
(async () => {
  await tf.setBackend('cpu');  // the same arithmetic on every machine (no GPU, no WebGL fallback)
  for (const [name, example] of Object.entries(CASES)) {
    try {
      const model = await tf.loadGraphModel(name + '/model.json');
      const output = await model.executeAsync(tf.tensor(example.x, undefined, example.dtype));
      window.results[name] = {ok: true, value: await output.array()};
    } catch (error) { window.results[name] = {ok: false, error: String(error)}; }
  }
  window.done = true;
})();
</script></body></html>"""


def test_tfjs_models_load_and_predict_in_headless_chromium(exported, tfjs_runtime, tmp_path):
    require_programs("chromium", "chromedriver", install=BROWSER_INSTALL)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(tfjs_runtime, site / "tf.min.js")
    cases = {}
    for name, (model, x, paths) in exported.items():
        shutil.copytree(Path(paths["tfjs"]).parent, site / name)
        cases[name] = {"x": x.tolist(), "dtype": str(x.dtype)}
    (site / "index.html").write_text(PAGE.replace("CASES", json.dumps(cases)))

    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", ports.port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        deadline = time.monotonic() + 120
        while not driver.execute_script("return window.done === true"):
            assert time.monotonic() < deadline, "TF.js did not finish within 120 s"
            time.sleep(0.2)
        results = driver.execute_script("return window.results")
    finally:
        driver.quit()
        server.shutdown()
    for name, (model, x, _) in exported.items():
        assert results[name]["ok"], f"{name}: {results[name].get('error')}"
        predicted, expected = np.array(results[name]["value"]), model.predict(x, verbose=0)
        assert predicted.shape == expected.shape
        difference = float(np.abs(predicted - expected).max())
        print(f"{name}: TF.js max abs difference {difference:.2e}")
        assert difference < TOLERANCE


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test's output to what it asserts
        pass


def test_onnx_and_tfjs_of_categorical_columns_are_refused_before_training(tmp_path):
    cars = write_cars_csv(tmp_path / "cars.csv", rows=40)
    result = run_launch("model=mlp", "data=csv", f"data.path={cars}", "data.target=price", "export.onnx=true",
                        "storage.uri=null", f"hydra.run.dir={tmp_path / 'job'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert ("Config error: export.onnx=true cannot export this model: its categorical columns (brand, colour, dealer)"
            in result.stderr)
    assert "Epoch 1/" not in result.stdout and not (tmp_path / "job" / "metrics.json").exists()


def test_exports_of_a_table_with_missing_cells_fill_them_as_best_keras_does(wine_with_holes_job):
    """data.impute=median lives inside the model: the TF Serving and TFLite files take a row whose missing numbers
    are NaN and predict what best.keras predicts (ONNX and TF.js: the tests above, case wine_with_holes)."""
    import tensorflow as tf

    job, model, rows = wine_with_holes_job
    expected = model.predict(rows, verbose=0)
    assert np.isfinite(expected).all() and 9 < float(expected.mean()) < 17, expected  # alcohol, in % vol
    tflite = tf.lite.Interpreter(str(job / "export" / "model.tflite"))
    given = tflite.get_input_details()[0]
    tflite.resize_tensor_input(given["index"], rows.shape)
    tflite.allocate_tensors()
    tflite.set_tensor(given["index"], rows)
    tflite.invoke()
    from_tflite = tflite.get_tensor(tflite.get_output_details()[0]["index"])
    serving = tf.saved_model.load(str(job / "export" / "serving" / "1")).signatures["serving_default"]
    (from_serving,) = serving(tf.constant(rows)).values()
    for name, predicted in (("tflite", from_tflite), ("serving", from_serving.numpy())):
        assert predicted.shape == expected.shape
        assert float(np.abs(predicted - expected).max()) < TOLERANCE, f"{name}: {predicted} against {expected}"


def test_raw_text_exports_are_refused_by_validate():
    from hydra import compose, initialize_config_dir

    from trainers.schema import ConfigError, register_schemas, validate

    register_schemas()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["data=imdb_text", "model=text_lstm", "export.tfjs=true"])
    with pytest.raises(ConfigError, match=r"export.tfjs=true cannot export a raw-text model \(data=imdb_text\)"):
        validate(cfg)


def test_a_missing_onnx_converter_is_refused_with_the_install_command(monkeypatch):
    import importlib.util

    from trainers.schema import ConfigError, _check_exporters

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "tf2onnx" else real(name, *args))
    export = OmegaConf.create({"onnx": True, "tfjs": False})
    data = OmegaConf.create({"input_kind": "sequence", "name": "timeseries"})
    with pytest.raises(ConfigError, match=r"export.onnx=true needs the Python package\(s\) tf2onnx, not installed "
                                          r"here. Install them with pip install -e '.\[onnx\]'"):
        _check_exporters(export, data)


def test_onnx_and_tfjs_need_a_float32_model():
    from trainers.export import check_exportable
    from trainers.pipeline import DataSpec
    from trainers.schema import ConfigError

    spec = DataSpec((24, 2), "sequence", "regression", 1, 100, 32)
    export = OmegaConf.create({"onnx": False, "tfjs": True})
    check_exportable(spec, export, "float32")
    with pytest.raises(ConfigError, match="export.tfjs=true needs a float32 model, but this job trains under "
                                          "mixed_bfloat16. Set precision=float32"):
        check_exportable(spec, export, "mixed_bfloat16")
