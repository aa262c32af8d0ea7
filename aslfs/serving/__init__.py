"""Serving wrappers around the exported TFLite file (the MLflow pyfunc)."""
