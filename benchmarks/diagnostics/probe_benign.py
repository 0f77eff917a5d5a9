"""What the prompt probe flags among benign requests: topic or intent?

The probe is fitted on the safe set's refused requests (SafeInstr: harmful) against its
answered ones (everyday Alpaca-like tasks). Scored on the held-out evaluation prompts, how
well does it tell the held-out harmful requests from each benign set, above all the
risky-sounding ones (I-PhysicalSafetySafe, our risky-sounding benign prompts) that a1
over-refuses? And again with 120 risky-sounding benign requests (`risky_train`,
`safety_advice`: the alignment's contrast rows, disjoint from the evaluation prompts) added
to the safe set's answered half, as a user could add them; with the mixes' AUROC (the
probe alone, and `seal-blend` less the probe at weight 1) under both safe sets.

    python benchmarks/diagnostics/probe_benign.py --quick     # after probe_layers.py and rank.py

States are cached under benchmarks/.cache/real/probe/; results go to
benchmarks/results/real.json (`probe_benign`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import DATA, KINDS, SEEDS, eval_prompts, eval_sets, mix_path  # noqa: E402
from probe_layers import STATES, TOKENIZE, aligned_model, safe_refusals  # noqa: E402
from probe_on import LAYER, cached  # noqa: E402
from rank import update_results  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.config import ProbeConfig  # noqa: E402
from sealft.data import load_samples  # noqa: E402
from sealft.model.load import device_for  # noqa: E402
from sealft.selection.probe import probe_scores, prompt_states  # noqa: E402
from sealft.selection.smoothing import standardised  # noqa: E402

PROMPTS = 100  # the first prompts of each evaluation set
CONTRAST = ("risky_train.jsonl", "safety_advice.jsonl")


def states(model, tok, samples, name: str) -> torch.Tensor:
    """Layer-LAYER states at the last prompt position, cached under `name`."""
    path = STATES / "benign" / f"{name}.pt"
    if path.exists():
        return torch.load(path)
    kw = {"batch_size": 16, "device": device_for("auto"), "precision": "fp32"}
    x = prompt_states(model, tok, samples, TOKENIZE, [LAYER], **kw)[:, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(x, path)
    return x


def prompt_samples(name: str, path, kind: str):
    """An evaluation set's first prompts as samples (the probe reads the prompt only)."""
    rows = STATES / "benign" / f"{name}.jsonl"
    rows.parent.mkdir(parents=True, exist_ok=True)
    with rows.open("w") as f:
        for text in eval_prompts(path, kind)[:PROMPTS]:
            f.write(json.dumps({"instruction": text, "output": "-"}) + "\n")
    return list(load_samples(rows).samples)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    y = [1] * len(pos) + [0] * len(neg)
    return round(float(roc_auc_score(y, np.concatenate([pos, neg]))), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small mixes")
    args = ap.parse_args()
    model, tok = aligned_model()
    _, refused = safe_refusals()
    sx = torch.load(STATES / "safe.pt")[:, LAYER]
    extra = [s for f in CONTRAST for s in load_samples(DATA / f).samples]
    fits = {
        "safe set": (sx, refused),
        "safe set + 120 risky-sounding benign": (
            torch.cat([sx, states(model, tok, extra, "contrast")]),
            refused + [False] * len(extra),
        ),
    }
    sets = {
        name: states(model, tok, prompt_samples(name, path, kind), name)
        for name, (path, kind) in eval_sets().items()
    }
    out = {}
    for fit, (x, y) in fits.items():
        score = {n: probe_scores(x, y, s, ProbeConfig().c, 0).numpy() for n, s in sets.items()}
        harmful = score["harmful_heldout"]
        out[fit] = {
            "harmful_vs": {
                n: auroc(harmful, score[n])
                for n, (_, kind) in eval_sets().items()
                if kind == "benign"
            },
            "mixes": mixes(x, y, args.quick),
        }
        print(fit, json.dumps(out[fit]), flush=True)
    update_results(lambda saved: saved.__setitem__("probe_benign", out))


def mixes(x: torch.Tensor, y: list[bool], quick: bool) -> dict:
    """Mean AUROC over the 10% mixes of each kind: the probe alone, and seal-blend less it."""
    out = {}
    for kind in KINDS:
        alone, blended = [], []
        for seed in SEEDS:
            mix = mix_path(kind, 10, seed, quick)
            labels = np.array([int(s.record["harmful"]) for s in load_samples(mix).samples])
            mx = torch.load(STATES / mix.parent.name / f"{mix.stem}.pt")[:, LAYER]
            probe = standardised(probe_scores(x, y, mx, ProbeConfig().c, seed))
            logits = standardised(cached("seal-blend", mix, len(labels)))
            alone.append(roc_auc_score(labels, probe.numpy()))
            blended.append(roc_auc_score(labels, -(logits - probe).numpy()))
        out[kind] = {
            "probe": round(statistics.fmean(alone), 4),
            "seal-blend - probe": round(statistics.fmean(blended), 4),
        }
    return out


if __name__ == "__main__":
    main()
