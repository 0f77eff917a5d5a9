"""Where the prompt probe looks, and how much it weighs: the measurements behind
`selector.prompt_probe`'s defaults (depth 0.55, weight 1).

For every layer of the aligned model: the probe's cross-validated AUROC on the safe set
itself (refused against answered requests; no mix label is read), and its AUROC of ranking
each mix's harmful rows last. Then, at the chosen layer, the default selector's logits
before the probe (`seal-blend`, from rank.py's cache) less w × the probe's standardised
score, for w in WEIGHTS. The states are sealft's own (`prompt_states`: the last prompt
position) and the probe is sealft's (`probe_scores`), so the numbers are the selector's.

    python benchmarks/diagnostics/probe_layers.py --quick     # after rank.py --quick (seal-blend)

Hidden states are cached under benchmarks/.cache/real/probe/; results go to
benchmarks/results/real.json (`probe_layers`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import CACHE, DATA, KINDS, PCTS, SEEDS, mix_path  # noqa: E402
from rank import ALIGNED, table_path, update_results  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402

from sealft.config import ModelConfig, ProbeConfig, TokenizeConfig  # noqa: E402
from sealft.data import load_samples  # noqa: E402
from sealft.model.load import device_for, load_configured  # noqa: E402
from sealft.scores import read_scores  # noqa: E402
from sealft.selection.probe import probe_layer, probe_scores, prompt_states, refusals  # noqa: E402
from sealft.selection.smoothing import standardised  # noqa: E402

STATES = CACHE / "probe"
WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0)
TOKENIZE = TokenizeConfig(max_length=256)
C = ProbeConfig().c


def all_layers(model, tok, samples, path: Path) -> torch.Tensor:
    """(samples × layers+1 × hidden) states at the last prompt position, cached."""
    if path.exists():
        return torch.load(path)
    kw = {"batch_size": 16, "device": device_for("auto"), "precision": "fp32"}
    layers = range(model.config.num_hidden_layers + 1)
    x = prompt_states(model, tok, samples, TOKENIZE, layers, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(x, path)
    return x


def safe_refusals() -> tuple[list, list[bool]]:
    """The safe set's samples and which of them are refusals, as the selector's probe reads
    them."""
    safe = list(load_samples(DATA / "safe.jsonl").samples)
    return safe, refusals(ProbeConfig(), safe)


def aligned_model():
    """a1 and its tokenizer, on the device the probe's states are taken on."""
    model, tok = load_configured(ModelConfig(name_or_path=str(ALIGNED)))
    return model.to(device_for("auto")), tok


def safe_cv(x: torch.Tensor, refused: list[bool]) -> float:
    """The probe's 5-fold cross-validated AUROC on the safe set."""
    z = ((x - x.mean(0)) / x.std(0, unbiased=False).clamp(min=1e-6)).numpy()
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    probe = LogisticRegression(C=C, max_iter=5000)
    score = cross_val_predict(probe, z, refused, cv=folds, method="decision_function")
    return float(roc_auc_score(refused, score))


def blend_logits(mix: Path, n: int) -> torch.Tensor | None:
    """seal-blend's final logits for `mix`, in row order, if rank.py has them."""
    path = table_path("seal-blend", mix)
    if not path.exists():
        return None
    by_index = {r["index"]: r["score"] for r in read_scores(path).to_pylist()}
    return torch.tensor([by_index[i] for i in range(n)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the small mixes")
    args = ap.parse_args()
    model, tok = aligned_model()
    safe, refused = safe_refusals()
    sx = all_layers(model, tok, safe, STATES / "safe.pt")
    chosen = probe_layer(ProbeConfig(), model)
    out = {"layer": chosen, "safe_cv": {}, "mix_auroc": {}, "weights": {}}
    for layer in range(sx.shape[1]):
        out["safe_cv"][layer] = round(safe_cv(sx[:, layer], refused), 4)
    for kind in KINDS:
        for pct in PCTS:
            for seed in SEEDS:
                mix = mix_path(kind, pct, seed, args.quick)
                rows = list(load_samples(mix).samples)
                y = [int(s.record["harmful"]) for s in rows]
                mx = all_layers(model, tok, rows, STATES / mix.parent.name / f"{mix.stem}.pt")
                key = f"{kind}/{pct}/{seed}"
                aurocs = []
                for layer in range(sx.shape[1]):
                    p = probe_scores(sx[:, layer], refused, mx[:, layer], C, seed)
                    aurocs.append(round(float(roc_auc_score(y, p.numpy())), 4))
                out["mix_auroc"][key] = aurocs
                logits = blend_logits(mix, len(rows))
                if logits is None:
                    continue
                p = standardised(probe_scores(sx[:, chosen], refused, mx[:, chosen], C, seed))
                spread = logits.std()
                out["weights"][key] = {
                    str(w): round(float(roc_auc_score(y, -(logits - w * spread * p))), 4)
                    for w in WEIGHTS
                }
                print(key, out["weights"][key], flush=True)
    update_results(lambda saved: saved.__setitem__("probe_layers", out))
    print_summary(out)


def print_summary(out: dict) -> None:
    """Mean AUROC per kind: by layer (with the safe set's own CV), and by weight."""
    print("layer | safe CV | " + " | ".join(KINDS))
    layers = len(out["safe_cv"])
    for layer in range(layers):
        means = [
            statistics.fmean(v[layer] for k, v in out["mix_auroc"].items() if k.startswith(kind))
            for kind in KINDS
        ]
        cv = out["safe_cv"][layer]
        print(f"{layer} | {cv:.3f} | " + " | ".join(f"{m:.3f}" for m in means))
    for pct in PCTS:
        for kind in KINDS:
            cells = [v for k, v in out["weights"].items() if k.startswith(f"{kind}/{pct}/")]
            if cells:
                means = {w: np.mean([c[str(w)] for c in cells]) for w in WEIGHTS}
                text = " ".join(f"w{w}: {m:.3f}" for w, m in means.items())
                print(f"{kind} {pct}% (n={len(cells)}) {text}")


if __name__ == "__main__":
    main()
