"""bench/cache_refresh.py runs as shipped on a small data set: each side's copy matches the folder (the bench checks it
byte for byte), the node fetched only the changed objects and linked the rest, the empty cache fetched everything."""

from __future__ import annotations

from bench.cache_refresh import main


def test_cache_refresh_fetches_only_the_changed_objects(tmp_path):
    summary = main(["--rounds", "2", "--files", "60", "--changed", "3", "--out", str(tmp_path)])
    assert summary["files"] == 60 and summary["changed"] == 3
    assert summary["downloaded"] == {"reuse": [3], "whole": [60]}
    assert summary["seconds"]["reuse"]["runs"] == summary["whole_over_reuse"]["runs"] == 2
    assert (tmp_path / "results.json").is_file()
