"""sealft: safety-preserving fine-tuning of aligned LLMs by bilevel data selection (SEAL).

The package follows the pipeline: `data` (load → tokenize) → `selection` (the selector,
its bilevel trainer, the baselines) → `sft` (fine-tuning) → `eval` → `report`, with
`recipes` running each command top to bottom from a `config`.
"""

import logging

__version__ = "0.2.0"

logging.getLogger("sealft").addHandler(logging.NullHandler())
