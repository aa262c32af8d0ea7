"""Ensemble export to TFLite with the competition contract (docs/reference.md §7, anchors.md §A.5).

- :mod:`aslfs.export.graph` — :class:`~aslfs.export.graph.EnsembleGraph`, the inference function (keras.ops) and
  the Keras reference :func:`~aslfs.export.graph.keras_ensemble_predict`;
- :mod:`aslfs.export.tflite` — SavedModel → TFLite conversion, the submission folder, :func:`export_ensemble`;
- :mod:`aslfs.export.runtime` — :class:`~aslfs.export.runtime.TFLiteRecognizer`, the LiteRT runner used by
  predict, evaluate, the MLflow pyfunc and the benchmarks.
"""
