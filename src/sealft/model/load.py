"""Load a causal LM and its tokenizer; pick the device and the precision it runs in."""

from __future__ import annotations

import contextlib
import inspect
from pathlib import Path

import torch

from ..config import ConfigError, ModelConfig
from ..progress import is_terminal, without_bars


def load_model_and_tokenizer(
    name_or_path: str,
    *,
    gguf_file: str | None = None,
    revision: str | None = None,
    dtype: str = "float32",
    trust_remote_code: bool = False,
):
    """Load from a Hub id, a local folder, or a GGUF file (a path ending in .gguf, or a
    folder plus `gguf_file`).

    A GGUF load comes back de-quantised but still flagged as quantised, which makes
    transformers refuse to train or save it; the weights are copied into a plain model
    built from the same config so that it trains and saves like any other.
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_path)
    if path.suffix == ".gguf" and gguf_file is None:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such GGUF file")
        name_or_path, gguf_file = str(path.parent), path.name
    elif not path.exists() and (
        path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1
    ):
        raise FileNotFoundError(f"{name_or_path}: no such model folder (and not a Hub id)")
    elif path.is_file() and gguf_file is None:
        raise ConfigError(f"{path}: a file, not a model (give a model folder, a Hub id or a .gguf)")
    # Every load names trust_remote_code, so that nothing but the setting decides whether
    # a Hub repository's own Python code may run here.
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        dtype
    ]
    # transformers reports an unreachable Hub id or a folder without a model as OSError:
    # bad input, so one line naming it rather than a traceback.
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
        with _quiet_gguf_bar(gguf_file):
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype, **kwargs)
    except OSError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{name_or_path}: cannot load the model ({reason})") from e
    if gguf_file:
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(
            AutoConfig.for_model(**config.to_dict()),
            dtype=torch_dtype,
            trust_remote_code=trust_remote_code,
        )
        plain.load_state_dict(model.state_dict())
        model = plain
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _quiet_gguf_bar(gguf_file: str | None):
    """transformers draws a de-quantisation bar for GGUF files that no setting turns off;
    off a terminal it is only carriage-return frames in a log."""
    if not gguf_file or is_terminal():
        return contextlib.nullcontext()
    from transformers import modeling_gguf_pytorch_utils

    return without_bars(modeling_gguf_pytorch_utils)


def load_configured(cfg: ModelConfig):
    """`load_model_and_tokenizer` for a `ModelConfig`."""
    return load_model_and_tokenizer(
        cfg.name_or_path,
        gguf_file=cfg.gguf_file,
        revision=cfg.revision,
        dtype=cfg.dtype,
        trust_remote_code=cfg.trust_remote_code,
    )


def device_for(requested: str = "auto") -> torch.device:
    if requested != "auto":
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# The longest batch (tokens) that auto trains with eager attention on a CPU: measured on
# SmolLM2-135M (LoRA, bf16, 2 threads; benchmarks/attention.py) eager took 0.75-0.85 of
# SDPA's time at 108 to 256 tokens and 1.19-1.51 of it at 512 and 1024, where its seq²
# attention matrices cost more than the fused kernel saves.
EAGER_CPU_MAX_TOKENS = 256


def training_attention(setting: str, device: torch.device, length: int) -> str | None:
    """The attention implementation a training pass over `length`-token rows should use,
    or None for the model's own."""
    if setting == "auto":
        return "eager" if device.type == "cpu" and length <= EAGER_CPU_MAX_TOKENS else None
    return None if setting == "model" else setting


@contextlib.contextmanager
def attention_for(model, setting: str, input_ids: torch.Tensor):
    """Run the enclosed passes of `model` (a PEFT, DDP or plain model) with the attention
    `training_attention` picks for `input_ids`, and restore the model's own afterwards."""
    wanted = training_attention(setting, input_ids.device, input_ids.shape[-1])
    base = _innermost(model)
    before = getattr(getattr(base, "config", None), "_attn_implementation", None)
    if wanted is None or wanted == before or not hasattr(base, "set_attn_implementation"):
        yield
        return
    base.set_attn_implementation(wanted)
    try:
        yield
    finally:
        base.set_attn_implementation(before)


# Data-parallel wrappers whose forward is the wrapped model's forward, unchanged.
TRANSPARENT_WRAPPERS = frozenset({"DistributedDataParallel", "DeepSpeedEngine"})


def unwrap_parallel(model, *, transparent_only: bool = False):
    """The model inside data-parallel wrappers (anything holding it as `.module`; with
    `transparent_only`, only the TRANSPARENT_WRAPPERS)."""
    while isinstance(getattr(model, "module", None), torch.nn.Module) and (
        not transparent_only or type(model).__name__ in TRANSPARENT_WRAPPERS
    ):
        model = model.module
    return model


def _innermost(model):
    """The transformers model inside data-parallel and PEFT wrappers."""
    model = unwrap_parallel(model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return (
            bool(
                getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")() in ("AVX512", "AMX")
            )
            and torch.cpu._is_avx512_bf16_supported()
        )
    return False


def use_bf16(device: torch.device, precision: str) -> bool:
    """bf16 when asked for ("bf16") or when the hardware does it fast ("auto")."""
    return precision == "bf16" or (precision == "auto" and bf16_supported(device))


def autocast(device: torch.device, precision: str):
    """bf16 autocast where `use_bf16`, else nothing."""
    if not use_bf16(device, precision):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _adapter_modules(model) -> set[int]:
    """ids of the modules inside PEFT adapters (`lora_A`, `lora_B`, ...): trainable, or
    frozen only while another adapter is active, and never to be swapped."""
    inside: set[int] = set()
    for module in model.modules():
        for name in getattr(module, "adapter_layer_names", ()):
            for sub in getattr(module, name, {}).values():
                inside.update(id(m) for m in sub.modules())
    return inside


@contextlib.contextmanager
def frozen_weights_in_bf16(model, device: torch.device, precision: str):
    """Hold the frozen fp32 weights of `model`'s linear layers in bf16 while autocast trains.

    Autocast caches its casts only for tensors that require grad, so every pass casts
    every frozen weight to bf16 again: under LoRA that is the whole base model, once per
    pass (a selector step makes three). A bf16 copy made once is what each of those casts
    produces, so the passes compute the same numbers; the fp32 weights come back on exit
    (a tied LM head is untied for the while and tied again). Nothing changes without bf16
    autocast. The caller runs only autocast passes inside: the swapped weights are bf16.
    """
    swapped: list[tuple[torch.nn.Module, str, torch.nn.Parameter]] = []
    if use_bf16(device, precision):
        adapters = _adapter_modules(model)
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear) or id(module) in adapters:
                continue
            for name in ("weight", "bias"):
                param = getattr(module, name)
                if param is None or param.requires_grad or param.dtype != torch.float32:
                    continue
                swapped.append((module, name, param))
                setattr(module, name, torch.nn.Parameter(param.detach().bfloat16(), False))
    try:
        yield
    finally:
        for module, name, param in swapped:
            setattr(module, name, param)


@contextlib.contextmanager
def compiled_layers(model, enabled: bool):
    """Each decoder layer of `model` compiled by torch.compile (dynamic shapes) for the
    while, undone on exit (runtime.compile).

    Layer by layer, as torchtune does, rather than the whole model: the hooks and the
    attention switch that sealft sets on the model body stay outside the compiled code, and
    layers of one class can reuse one compiled graph (SmolLM2's 30 compiled in about a
    minute). Decoder layers are the model's `_no_split_modules` classes, which transformers
    declares for every causal LM.
    """
    layers: list[torch.nn.Module] = []
    if enabled:
        inner = _innermost(model)
        kinds = set(getattr(inner, "_no_split_modules", None) or ())
        layers = [m for m in inner.modules() if type(m).__name__ in kinds]
        if not layers:
            raise ConfigError(
                f"runtime.compile: {type(inner).__name__} names no decoder layer class "
                "(_no_split_modules) to compile; set runtime.compile=false"
            )
        for layer in layers:
            layer.compile(dynamic=True)
    try:
        yield
    finally:
        for layer in layers:
            layer._compiled_call_impl = None


def cache_keyword(model) -> str:
    """The forward keyword that takes a KV cache: `cache` from transformers 5.25 on (which
    deprecates `past_key_values`), `past_key_values` before; the output carries the same name."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
