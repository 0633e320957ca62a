"""TensorFlow/Keras training jobs. Knows nothing of Ray or buckets; imports TensorFlow lazily."""
