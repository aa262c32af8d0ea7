"""aslfs: ASL fingerspelling recognition from MediaPipe landmarks.

The library is pure and importable: every stage, flow and CLI command only wires functions defined here.
"""

__version__ = "0.1.0"
