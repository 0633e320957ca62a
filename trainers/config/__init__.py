"""The job config's typed schemas and checks, one concept per module (the list: trainers/schema.py).

Import them from `trainers.schema`, the entry point that names them all; the modules here import only each
other, and neither TensorFlow nor Keras.
"""
