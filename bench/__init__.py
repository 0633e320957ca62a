"""Benchmarks of the launcher against plain Keras and Ray Tune; run from the repo root as `python -m bench.<name>`."""
