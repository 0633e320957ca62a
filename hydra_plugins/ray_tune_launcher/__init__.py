"""Hydra discovery shim for raylaunch's Ray Tune launcher and sweeper; the work happens in `cluster/`."""
