"""The aslfs model: configuration and presets (``config``), the Squeezeformer encoder (``encoder``), the
Speech2Text decoder (``decoder``) and the assembled ``FingerSpeller`` (``fingerspeller``).

The package itself exports only the configuration, so ``import aslfs.models`` (what the parameter loader needs)
imports no layer: import ``FingerSpeller`` / ``build_model`` from ``aslfs.models.fingerspeller`` and
``SqueezeformerEncoder`` from ``aslfs.models.encoder``.
"""

from aslfs.models.config import PRESETS, ModelConfig, config_from_params, get_config

__all__ = ["PRESETS", "ModelConfig", "config_from_params", "get_config"]
