"""A readable Transformer core in which every architectural choice is a named,
pluggable component. Pure PyTorch; never imports lightning."""
from . import attention, ffn, norm, positional  # noqa: F401  (registers the variants)
from .config import ConfigError, ModelConfig
from .model import SequenceModel, build_model
from . import recurrent  # noqa: F401
from .registry import registries

__all__ = ["ModelConfig", "ConfigError", "SequenceModel", "build_model", "registries"]
