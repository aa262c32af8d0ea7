"""Keras layers of the aslfs model, one public class per file (see ``aslfs/layers/masking.py`` for mask polarity)."""
