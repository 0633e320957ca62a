"""Ray side of the launcher: sweeps as Ray Tune trials, storage, pull. Knows nothing of Keras internals."""
