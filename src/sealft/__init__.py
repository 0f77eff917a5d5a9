"""sealft: safety-preserving fine-tuning of aligned language models (SEAL)."""

__version__ = "0.1.0"
