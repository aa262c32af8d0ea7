"""Interoperability with other implementations of the model (checkpoints of the 1st-place reference code)."""
