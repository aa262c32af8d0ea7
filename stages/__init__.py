"""Thin DVC stage entry points: ``python -m stages.<name> ARGS...`` parses its arguments, reads its ``params.yaml``
section and makes one library call (run as a Prefect flow, see :mod:`flows.stage`). Commands and parameters are
wired in ``dvc.yaml``."""
