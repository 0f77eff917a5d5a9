"""What the default selector's bilevel steps add to their implicit-reward start, measured
on the logits that `rank.py` runs stored.

For every quick 10% mix with both a default selector run and an implicit-reward table:
the correlation of the learned logits (before smoothing) with the implicit reward, and
where a run from zeros exists (seed 0), the spread of the logits learned from zeros, their
correlation with the reward, and the AUROC of the two added, the zeros-run logits at a
quarter of the reward's weight, raw and through the defaults' smoothing.

    python benchmarks/diagnostics/evidence.py     # after rank.py --quick (seal-blend,
                                           # seal-zeros, implicit-reward-blend)

Results go to `real.json` under `evidence`, and a Markdown table is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import KINDS, SEEDS, mix_path  # noqa: E402
from rank import id_ordered, table_path, update_results  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.selection.features import ngram_features  # noqa: E402
from sealft.selection.smoothing import blend, standardised  # noqa: E402

ZEROS_WEIGHT = 0.25


def learned(name: str, mix) -> torch.Tensor | None:
    """A selector run's raw logits, in sample-ID order (as the selector holds them)."""
    path = table_path(name, mix).parent / "selector.safetensors"
    return load_file(str(path))["logits"] if path.exists() else None


def cell(mix, seed: int) -> dict | None:
    seal = learned("seal-blend", mix)
    if seal is None or not table_path("implicit-reward", mix).exists():
        return None
    cfg, samples, ir = id_ordered("implicit-reward", mix, seed)
    y = [int(s.record["harmful"]) for s in samples]
    out = {"corr_seal_ir": round(float(np.corrcoef(ir, seal)[0, 1]), 3)}
    zeros = learned("seal-zeros", mix)
    if zeros is not None:
        both = standardised(ir) + ZEROS_WEIGHT * standardised(zeros)
        features = ngram_features(samples, cfg.selector.features)
        out |= {
            "zeros_std": round(float(zeros.std()), 4),
            "corr_zeros_ir": round(float(np.corrcoef(ir, zeros)[0, 1]), 3),
            "auroc_ir_plus_zeros": round(float(roc_auc_score(y, -both)), 4),
            "auroc_ir_plus_zeros_blend": round(
                float(roc_auc_score(y, -blend(features, both, seed=seed))), 4
            ),
        }
    return out


def main() -> None:
    result = {}
    for kind in KINDS:
        for seed in SEEDS:
            found = cell(mix_path(kind, 10, seed, True), seed)
            if found is not None:
                result[f"{kind}/10/{seed}"] = found
    update_results(lambda saved: saved.__setitem__("evidence", result))
    names = sorted({k for v in result.values() for k in v})
    print("| mix | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for key, v in result.items():
        print(f"| {key} | " + " | ".join(str(v.get(n, "–")) for n in names) + " |")


if __name__ == "__main__":
    main()
