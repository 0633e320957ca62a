"""`python launch.py push LOCAL gs://BUCKET/PREFIX` as the README has users type it, against the GCS emulator: what
it uploads, skips, keeps and (with --delete) removes, and the arguments it refuses with exit status 2."""

from __future__ import annotations

import pytest

from cluster.results.inputs import list_input
from tests.conftest import run_launch
from tests.keras_practice.makers import write_image_folder
from trainers.schema import ConfigError


def stored(uri: str) -> list[str]:
    return sorted(file.relative for file in list_input("data.path", uri, True, fresh=True).files)


def test_push_uploads_skips_keeps_and_mirrors_with_delete(gcs, tmp_path):
    _, bucket = gcs
    photos = write_image_folder(tmp_path / "photos", per_class=3, size=8)
    (photos / ".DS_Store").write_text("hidden files stay home")
    uri = f"gs://{bucket}/data/photos"
    local = sorted(path.relative_to(photos).as_posix() for path in photos.rglob("*.png"))

    first = run_launch("push", str(photos), uri)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "push: 6 of 6 file(s) to upload" in first.stdout and f"data.path={uri}" in first.stdout
    assert stored(uri) == local

    again = run_launch("push", str(photos), uri)
    assert "push: 0 of 6 file(s) to upload (0 B)" in again.stdout, again.stdout
    assert "6 already there with the same checksum" in again.stdout

    (photos / "dark" / "000.png").unlink()
    (photos / "light" / "002.png").write_bytes((photos / "light" / "001.png").read_bytes())
    kept = run_launch("push", str(photos), uri)
    assert kept.returncode == 0 and "push: 1 of 5 file(s) to upload" in kept.stdout, kept.stdout
    assert "1 object(s) under" in kept.stdout and "--delete removes them" in kept.stdout
    assert stored(uri) == local  # the deleted photo is still there: jobs would read it

    mirrored = run_launch("push", "--delete", str(photos), uri)
    assert mirrored.returncode == 0, mirrored.stderr[-2000:]
    assert f"push: deleted 1 object(s) under {uri}" in mirrored.stdout and "--delete removes" not in mirrored.stdout
    assert stored(uri) == [name for name in local if name != "dark/000.png"]


def test_push_refuses_bad_arguments_before_uploading(gcs, tmp_path):
    _, bucket = gcs
    photos = write_image_folder(tmp_path / "photos", per_class=2, size=8)
    table = tmp_path / "houses.csv"
    table.write_text("area,price\n1,2\n")
    for args, expected in [
        ([str(photos), "s3://elsewhere/photos"], "'s3://elsewhere/photos': expected gs://BUCKET/PREFIX"),
        ([str(tmp_path / "nothing"), f"gs://{bucket}/x"], "nothing: no such file or folder"),
        (["--delete", str(table), f"gs://{bucket}/data/houses.csv"], "--delete mirrors a folder"),
        (["--workers", "0", str(photos), f"gs://{bucket}/x"], "--workers must be at least 1, received 0"),
    ]:
        result = run_launch("push", *args)
        assert result.returncode == 2 and expected in result.stderr, (args, result.stderr[-1000:])
    missing = run_launch("push", str(photos), "gs://no-such-bucket-here/photos")
    assert missing.returncode == 1 and "push: error:" in missing.stderr, missing.stderr[-1000:]
    assert "Traceback" not in missing.stderr
    with pytest.raises(ConfigError, match="no objects at or under it"):  # nothing was uploaded by the refused ones
        list_input("data.path", f"gs://{bucket}/x", True, fresh=True)
