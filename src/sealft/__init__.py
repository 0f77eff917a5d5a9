"""sealft: safety-preserving fine-tuning of aligned LLMs by bilevel data selection (SEAL).

The package follows the pipeline: `data` (load → tokenize) → `selection` (the selector,
its bilevel trainer, the baselines) → `sft` (fine-tuning) → `eval` → `report`, with
`recipes` running each command top to bottom from a `config`.

The Python API (sealft.api) is here too, imported when first used, so that `seal --help`
does not pay for torch: `from sealft import select, score, finetune, evaluate`.
"""

import logging

__version__ = "0.3.0"

logging.getLogger("sealft").addHandler(logging.NullHandler())

API = ("select", "score", "finetune", "evaluate", "Selection", "Finetuned")
__all__ = ["__version__", *API]


def __getattr__(name: str):
    if name in API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sealft' has no attribute {name!r}")
