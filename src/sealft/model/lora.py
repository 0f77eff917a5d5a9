"""LoRA adapters over one frozen base model (PEFT), and the parameters of each."""

from __future__ import annotations

import torch

from ..config import LoraSettings


def add_lora(model, settings: LoraSettings, adapter_names: tuple[str, ...] = ("default",)):
    """Wrap `model` with one LoRA adapter per name over the same frozen base weights."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config, adapter_name=adapter_names[0])
    for name in adapter_names[1:]:
        peft_model.add_adapter(name, config)
    peft_model.set_adapter(adapter_names[0])
    return peft_model


def adapter_parameters(model, adapter: str) -> list[torch.nn.Parameter]:
    """The LoRA parameters that belong to one adapter (named `...lora_A.<adapter>.weight`)."""
    params = [p for n, p in model.named_parameters() if f".{adapter}." in n and "lora_" in n]
    if not params:
        raise ValueError(f"no LoRA parameters for adapter {adapter!r}")
    return params
