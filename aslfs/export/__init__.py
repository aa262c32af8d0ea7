"""Ensemble export to TFLite with the competition contract (docs/reference.md §7, anchors.md §A.5).

- :mod:`aslfs.export.graph` — :class:`~aslfs.export.graph.EnsembleGraph`, the inference function (keras.ops);
- :mod:`aslfs.export.keras_predict` — the Keras reference :func:`~aslfs.export.keras_predict.keras_ensemble_predict`;
- :mod:`aslfs.export.members` — the members: trained runs (:mod:`aslfs.runs`) or untrained models of a preset;
- :mod:`aslfs.export.tflite` — SavedModel → TFLite conversion, the submission folder, :func:`export_ensemble`;
- :mod:`aslfs.export.runtime` — :class:`~aslfs.export.runtime.TFLiteRecognizer`, the LiteRT runner used by
  predict, evaluate, the MLflow pyfunc and the benchmarks.
"""
