"""Storage URIs and object names: what a user types, and what the store refuses before any I/O."""

from __future__ import annotations

import pytest

from cluster.store import StorageError, open_store, parse_uri
from cluster.store.base import check_key
from cluster.store.layout import check_name


@pytest.mark.parametrize(
    "uri, why",
    [
        ("gs://", "no bucket name"),
        ("gs:///experiments", "no bucket name"),
        ("gs://My_Bucket/x", "breaks Cloud Storage's rules"),
        ("gs://ab/x", "breaks Cloud Storage's rules"),
        ("gs://my-bucket/a/../b", "'..'"),
        ("s3://my-bucket/x", "scheme 's3'"),
        ("file://relative/path", "absolute path"),
        ("   ", "empty"),
    ],
)
def test_malformed_uri_is_refused_with_value_reason_and_allowed_forms(uri, why):
    with pytest.raises(StorageError) as raised:
        open_store(uri)
    message = str(raised.value)
    assert repr(uri.strip()) in message or repr(uri) in message
    assert why in message
    assert "gs://BUCKET[/PREFIX] or a local folder" in message


def test_well_formed_uris(tmp_path):
    parsed = parse_uri("gs://my-bucket/team/exp/")
    assert (parsed.scheme, parsed.bucket, parsed.prefix, str(parsed)) == ("gs", "my-bucket", "team/exp", "gs://my-bucket/team/exp")
    assert parse_uri("gs://my-bucket").prefix == ""
    # Relative folders resolve against the directory launch.py started in, not the trial's cwd.
    assert parse_uri("results", base_dir=tmp_path).prefix == str(tmp_path / "results")
    assert parse_uri(f"file://{tmp_path}/x").prefix == str(tmp_path / "x")


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "../x", "a/./b", "a\\b"])
def test_store_refuses_keys_that_could_escape_its_root(key):
    with pytest.raises(StorageError, match="Refusing object name"):
        check_key(key)


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "", "x" * 201, "a b"])
def test_sweep_and_trial_names_are_single_safe_segments(name):
    with pytest.raises(ValueError, match="Invalid trial name"):
        check_name("trial", name)
