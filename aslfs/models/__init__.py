"""The aslfs model: configuration and presets (``config``), the Squeezeformer encoder (``encoder``), the
Speech2Text decoder (``decoder``) and the assembled ``FingerSpeller`` (``fingerspeller``).

Heavy classes are imported lazily so ``import aslfs.models`` stays cheap.
"""

from aslfs.models.config import PRESETS, ModelConfig, config_from_params, get_config

__all__ = ["PRESETS", "ModelConfig", "config_from_params", "get_config", "FingerSpeller", "SqueezeformerEncoder",
           "build_model"]


def __getattr__(name):
    if name in ("FingerSpeller", "build_model"):
        from aslfs.models import fingerspeller

        return getattr(fingerspeller, name)
    if name == "SqueezeformerEncoder":
        from aslfs.models.encoder import SqueezeformerEncoder

        return SqueezeformerEncoder
    raise AttributeError(f"module 'aslfs.models' has no attribute {name!r}")
