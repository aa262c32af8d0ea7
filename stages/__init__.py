"""The entry points of aslfs: one module per pipeline stage, each declared once with :func:`stages.stage.stage`
(arguments, params sections, body), and :mod:`stages.cli`, the ``aslfs`` command line.

``python -m stages.<name> ARGS`` is what ``dvc.yaml`` runs (the body as a Prefect flow); ``aslfs <name> ARGS`` runs
the same declaration. The library (``aslfs``) never imports this package: entry points depend on the library, not
the other way round."""
