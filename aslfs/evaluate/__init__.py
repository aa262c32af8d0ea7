"""Evaluation of the exported TFLite file on held-out sequences (docs/reference.md §6.3): what a submission would score.

- :mod:`aslfs.evaluate.heldout` — which sequences are scored (:func:`~aslfs.evaluate.heldout.heldout_items`);
- :mod:`aslfs.evaluate.scoring` — predictions of the file and their scores (:func:`~aslfs.evaluate.scoring.summarize`);
- :mod:`aslfs.evaluate.curves` — the ensemble members' training curves and whether they saw the held-out fold;
- :mod:`aslfs.evaluate.outputs` — the DVC metrics and plot files, and the terminal report;
- :mod:`aslfs.evaluate.promotion` — MLflow logging and the registry's ``champion`` alias;
- :mod:`aslfs.evaluate.stage` — the ``evaluate`` stage (:func:`~aslfs.evaluate.stage.run_evaluation`).
"""
