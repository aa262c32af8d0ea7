"""Training machinery (docs/reference.md §5): loader with length bucketing, losses, schedule, checkpoints, the training
entry :func:`aslfs.training.trainer.train_model`, validation decoding and the round-1 OOF table.

Modules (import them directly; this package imports nothing heavy):

- ``loader``: :class:`~aslfs.training.loader.SequenceBatches`, a multiprocess ``keras.utils.PyDataset``.
- ``losses``: cross-entropy / BCE / CTC terms and the round combinations.
- ``model``: :class:`~aslfs.training.model.TrainingModel`, the wrapper that owns the loss.
- ``schedule``: warm-up + cosine learning rate per micro-batch.
- ``checkpoint``: atomic ``checkpoint/{last.keras, state.json}``.
- ``evaluation``: greedy-decoding validation → predictions + metrics.
- ``trainer``: ``train_model(round, fold, seed, data_dir, folds_csv, out_dir, oof_csv, ...)``.
- ``oof``: the OOF score table that round 2 trains its confidence head on.
"""
