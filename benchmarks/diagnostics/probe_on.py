"""The prompt probe on top of every ranker rank.py has cached, and a weight that adapts.

`selector.prompt_probe` subtracts w × spread × z(probe) from the selector's logits. Which
ranking under it matters, and does a fixed w = 1 hold on mixes it was not chosen on?

1. For each cached ranker in BASES and each mix: the AUROC of ranking the harmful rows last
   and the harmful rows kept at p = 0.8, at w = 0, 1, 2 and with the adaptive rule below.
   The probe is sealft's (`probe_scores`) on the hidden states probe_layers.py cached.
2. Held out: on each run of today's defaults (`seal-default`, the probe on), the logits
   before the probe and the probe's exact score are recovered from the run folder (the raw
   learned logits in selector.safetensors, put through the same blend), so every mix the
   defaults ran on is scored under each rule, including the mixes the weight was not chosen
   on (every mix but the 10% ones, jbb 5% seeds 0 and 1, jbb 20% seed 0 and self 5% seed 0).

The adaptive rule (`agree`), written down before the held-out mixes were run: w = 2 (1 −
max(0, r)), r the correlation of the logits with the negated probe. Where the two already
flag the same rows the probe adds little beyond its false alarms; where they are unrelated
it carries what the logits miss.

    python benchmarks/diagnostics/probe_on.py --quick     # after rank.py and probe_layers.py

Results go to benchmarks/results/real.json (`probe_on`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import KINDS, PCTS, SEEDS, mix_path  # noqa: E402
from probe_layers import STATES, safe_refusals  # noqa: E402
from rank import table_path, update_results  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.config import ProbeConfig, SelectRecipeConfig  # noqa: E402
from sealft.data import load_samples, load_sources  # noqa: E402
from sealft.scores import n_keep, read_scores  # noqa: E402
from sealft.selection.features import ngram_features  # noqa: E402
from sealft.selection.probe import probe_scores  # noqa: E402
from sealft.selection.selector import read_selector_file  # noqa: E402
from sealft.selection.smoothing import blend, standardised  # noqa: E402

BASES = ("seal-blend", "seal-1-epoch", "implicit-reward-blend", "implicit-reward", "frozen-loss")
LAYER = 16  # probe_layers.py: the defaults' depth 0.55 of 30 layers
RULES = ("0", "1", "2", "agree")


def weight(rule: str, logits: torch.Tensor, probe: torch.Tensor) -> float:
    if rule != "agree":
        return float(rule)
    r = float(np.corrcoef(logits.numpy(), -probe.numpy())[0, 1])
    return 2 * (1 - max(0.0, r))


def quality(y: np.ndarray, logits: torch.Tensor, probe: torch.Tensor) -> dict:
    """AUROC and harmful rows kept at p = 0.8 under each rule."""
    out = {}
    keep = n_keep(len(y), 0.8)
    for rule in RULES:
        final = logits - weight(rule, logits, probe) * logits.std() * probe
        order = np.argsort(-final.numpy(), kind="stable")
        out[rule] = {
            "auroc": round(float(roc_auc_score(y, -final.numpy())), 4),
            "kept": int(y[order[:keep]].sum()),
        }
    return out


def cached(name: str, mix: Path, n: int) -> torch.Tensor | None:
    path = table_path(name, mix)
    if not path.exists():
        return None
    by_index = {r["index"]: r["score"] for r in read_scores(path).to_pylist()}
    return torch.tensor([by_index[i] for i in range(n)], dtype=torch.float32)


def recovered(run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """A defaults run's logits before the probe and its standardised probe, in row order.

    final = B − std(B) · z, B the blend of the learned logits: the blend's cross-fitting
    folds follow the selector's sample order, so it is recomputed in that order."""
    cfg = SelectRecipeConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text()))
    meta, tensors = read_selector_file(run / "selector.safetensors")
    order = {sid: i for i, sid in enumerate(json.loads(meta["sample_ids"]))}
    samples = sorted(load_sources(cfg.data).samples, key=lambda s: order[s.sample_id])
    b = blend(ngram_features(samples, cfg.selector.features), tensors["logits"], seed=cfg.seed)
    final = {r["index"]: r["score"] for r in read_scores(run / "scores.parquet").to_pylist()}
    final = torch.tensor([final[s.index] for s in samples], dtype=torch.float32)
    back = torch.as_tensor(np.argsort([s.index for s in samples]))
    return b[back], ((b - final) / b.std())[back]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small mixes")
    args = ap.parse_args()
    _, refused = safe_refusals()
    sx = torch.load(STATES / "safe.pt")[:, LAYER]
    out: dict[str, dict] = {name: {} for name in (*BASES, "seal-default")}
    for kind in KINDS:
        for pct in PCTS:
            for seed in SEEDS:
                mix = mix_path(kind, pct, seed, args.quick)
                y = np.array([int(s.record["harmful"]) for s in load_samples(mix).samples])
                key = f"{kind}/{pct}/{seed}"
                mx = torch.load(STATES / mix.parent.name / f"{mix.stem}.pt")[:, LAYER]
                probe = standardised(probe_scores(sx, refused, mx, ProbeConfig().c, seed))
                for name in BASES:
                    logits = cached(name, mix, len(y))
                    if logits is not None:
                        out[name][key] = quality(y, logits, probe)
                run = table_path("seal-default", mix).parent
                if (run / "selector.safetensors").exists():
                    out["seal-default"][key] = quality(y, *recovered(run))
    update_results(lambda saved: saved.__setitem__("probe_on", out))
    print(summary(out))


def summary(out: dict) -> str:
    """Mean AUROC (mean kept at p = 0.8) per ranker, mix group and rule."""
    lines = ["| ranker | mixes | n | " + " | ".join(f"w = {r}" for r in RULES) + " |"]
    lines.append("|---|---|---|" + "---|" * len(RULES))
    for name, cells in out.items():
        for kind in KINDS:
            for pct in PCTS:
                group = [v for k, v in cells.items() if k.startswith(f"{kind}/{pct}/")]
                if not group:
                    continue
                text = " | ".join(
                    f"{statistics.fmean(c[r]['auroc'] for c in group):.3f} "
                    f"({statistics.fmean(c[r]['kept'] for c in group):.1f})"
                    for r in RULES
                )
                lines.append(f"| {name} | {kind} {pct}% | {len(group)} | {text} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
