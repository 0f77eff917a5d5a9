"""Models: loading (Hub, folder, GGUF), LoRA adapters, per-sample losses, the optimiser."""
