"""Models stage: adapters that make every denoiser look the same to the experiments."""

from generator.models.base import Capabilities, Embeddings, ModelAdapter, PromptEmbeddings, TokenPiece
from generator.models.memory import MemoryOptions
from generator.models.registry import MODELS, load_model

__all__ = ["Capabilities", "Embeddings", "ModelAdapter", "PromptEmbeddings", "TokenPiece", "MemoryOptions", "MODELS", "load_model"]
