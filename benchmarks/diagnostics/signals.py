"""Which training-free signals separate the harmful rows, and how far do they go?

The ranking grid (rank.py) measures whole rankers. This script measures their raw
ingredients per sample, so that a default can be chosen from evidence rather than by
running one selector per idea. For every mix it computes, once, and caches:

- the aligned model's and the reference's (the as-shipped SmolLM2) mean response-token loss,
  over the whole response and over the first 4 tokens: frozen loss, and the implicit
  reward (reference loss minus aligned loss);
- refusal affinity: the aligned model's (and the reference's) mean log-likelihood of the
  safe set's refusals as the answer to the sample's prompt. An aligned model that would
  refuse a prompt marks it harmful whatever the response says; minus the reference's, it
  keeps only what alignment added;

and then scores each signal, and a few combinations, by the AUROC of ranking the harmful
rows last and the harmful rows kept at p = 0.8.

    python benchmarks/diagnostics/signals.py --quick          # the 200-row mixes, seed 0
    python benchmarks/diagnostics/signals.py                  # the 500-row mixes, seeds 0-2

Results: benchmarks/results/real_signals.json (per mix and signal) and a Markdown table
on stdout (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import CACHE, DATA, KINDS, PCTS, SEEDS, mix_path, smollm_gguf  # noqa: E402
from sklearn.feature_extraction.text import HashingVectorizer  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from sealft.config import DataConfig, ModelConfig  # noqa: E402
from sealft.data import Sample, encode, load_sources, pad_id  # noqa: E402
from sealft.eval.detector import PhraseDetector  # noqa: E402
from sealft.io import write_json  # noqa: E402
from sealft.model.load import device_for, load_configured, load_model_and_tokenizer  # noqa: E402
from sealft.model.losses import sample_losses  # noqa: E402
from sealft.scores import n_keep  # noqa: E402

HERE = Path(__file__).resolve().parent
ALIGNED = CACHE / "aligned"
OUT = CACHE / "signals"
RESULTS = HERE.parent / "results" / "real_signals.json"
MAX_LENGTH, K, BATCH = 256, 4, 16
REFUSALS = 4  # refusal answers from the safe set scored against every prompt
REFUSAL_TOKENS = 16


def refusal_texts(n: int = REFUSALS) -> list[str]:
    """`n` of the safe set's refusals (seeded), the answers whose likelihood we measure."""
    safe = load_sources(DataConfig(path=str(DATA / "safe.jsonl"))).samples
    detector = PhraseDetector()
    refusals = sorted({s.response for s in safe if detector.is_refusal(s.response)})
    return random.Random(0).sample(refusals, n)


def losses(model, tok, samples, k: int | None) -> np.ndarray:
    enc = encode(samples, tok, max_length=MAX_LENGTH, response_tokens=k)
    kw = {"pad": pad_id(tok), "batch_size": BATCH, "precision": "auto"}
    return sample_losses(model, enc, **kw).double().numpy()


def refusal_affinity(model, tok, samples, refusals: list[str]) -> np.ndarray:
    """Mean over the refusals of −loss(refusal | prompt): how readily the model refuses."""
    total = np.zeros(len(samples))
    for text in refusals:
        swapped = [Sample(s.sample_id, s.index, s.prompt, text, s.record) for s in samples]
        total -= losses(model, tok, swapped, REFUSAL_TOKENS)
    return total / len(refusals)


def compute(mix: Path, models: dict, refusals: list[str]) -> dict:
    """Every raw signal of one mix (cached as JSON next to the other mixes')."""
    cached = OUT / mix.parent.name / f"{mix.stem}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    samples = list(load_sources(DataConfig(path=str(mix))).samples)
    start = time.time()
    out: dict = {
        "harmful": [int(s.record["harmful"]) for s in samples],
        "text": [" ".join(m["content"] for m in s.prompt) + " || " + s.response for s in samples],
    }
    for name, (model, tok) in models.items():
        out[f"{name}_loss_all"] = losses(model, tok, samples, None).tolist()
        out[f"{name}_loss_k{K}"] = losses(model, tok, samples, K).tolist()
        out[f"{name}_refusal"] = refusal_affinity(model, tok, samples, refusals).tolist()
    out["seconds"] = round(time.time() - start)
    cached.parent.mkdir(parents=True, exist_ok=True)
    write_json(cached, out)
    return out


def crossfit(text: list[str], y: np.ndarray, folds: int = 5) -> np.ndarray:
    """Out-of-fold ridge predictions of `y` from hashed word 1-2-grams (none sees its own y)."""
    x = HashingVectorizer(ngram_range=(1, 2), n_features=2**18, alternate_sign=False).transform(
        text
    )
    pred = np.zeros(len(y))
    for train, test in KFold(folds, shuffle=True, random_state=0).split(y):
        pred[test] = Ridge(alpha=1.0).fit(x[train], y[train]).predict(x[test])
    return pred


def z(v) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    return (v - v.mean()) / max(v.std(), 1e-9)


def signals(raw: dict) -> dict[str, np.ndarray]:
    """Scores to rank by, higher = keep."""
    ir_all = np.subtract(raw["reference_loss_all"], raw["aligned_loss_all"])
    ir_k = np.subtract(raw["reference_loss_k4"], raw["aligned_loss_k4"])
    refusal = -np.asarray(raw["aligned_refusal"])
    refusal_ir = -np.subtract(raw["aligned_refusal"], raw["reference_refusal"])
    out = {
        "frozen-loss (k4)": -np.asarray(raw["aligned_loss_k4"]),
        "frozen-loss (all)": -np.asarray(raw["aligned_loss_all"]),
        "implicit-reward (k4)": ir_k,
        "implicit-reward (all)": ir_all,
        "refusal-affinity": refusal,
        "refusal-affinity − reference": refusal_ir,
        "z(ir all) + z(refusal)": z(ir_all) + z(refusal),
        "z(ir all) + z(refusal − ref)": z(ir_all) + z(refusal_ir),
        "z(ir all) + z(ir k4)": z(ir_all) + z(ir_k),
    }
    out["crossfit(ir all)"] = crossfit(raw["text"], ir_all)
    out["z(ir all) + z(crossfit ir all)"] = z(ir_all) + z(out["crossfit(ir all)"])
    best = out["z(ir all) + z(refusal − ref)"]
    out["crossfit(ir + refusal−ref)"] = z(best) + z(crossfit(raw["text"], best))
    return out


def quality(y: list[int], score: np.ndarray) -> dict:
    order = np.argsort(-score, kind="stable")
    keep = n_keep(len(y), 0.8)
    kept = int(np.asarray(y)[order[:keep]].sum())
    return {"auroc": round(float(roc_auc_score(y, -score)), 4), "kept@0.8": kept}


def table(results: dict) -> str:
    groups: dict[tuple, list[dict]] = {}
    for key, by_signal in results.items():
        kind, pct, _seed = key.split("/")
        for name, q in by_signal.items():
            groups.setdefault((name, kind, pct), []).append(q)
    names = list(dict.fromkeys(name for name, _, _ in groups))
    cols = sorted({(k, p) for _, k, p in groups}, key=lambda c: (c[0], int(c[1])))
    head = "| signal | " + " | ".join(f"{k} {p}%" for k, p in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    for name in names:
        cells = []
        for col in cols:
            qs = groups.get((name, *col), [])
            auc = [q["auroc"] for q in qs]
            kept = [q["kept@0.8"] for q in qs]
            sd = f" ± {statistics.stdev(auc):.3f}" if len(auc) > 1 else ""
            cells.append(f"{statistics.fmean(auc):.3f}{sd} ({statistics.fmean(kept):.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the 200-row mixes, seed 0")
    ap.add_argument("--kinds", nargs="*", default=list(KINDS))
    ap.add_argument("--pcts", nargs="*", type=int, default=list(PCTS))
    args = ap.parse_args()
    seeds = [0] if args.quick else list(SEEDS)
    torch.manual_seed(0)
    device = device_for("auto")
    aligned = load_configured(ModelConfig(name_or_path=str(ALIGNED)))
    reference = load_model_and_tokenizer(smollm_gguf())
    models = {
        "aligned": (aligned[0].to(device), aligned[1]),
        "reference": (reference[0].to(device), aligned[1]),  # same tokenizer
    }
    refusals = refusal_texts()
    size = "quick" if args.quick else "full"
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results = saved.setdefault(size, {})
    for kind in args.kinds:
        for pct in args.pcts:
            for seed in seeds:
                raw = compute(mix_path(kind, pct, seed, args.quick), models, refusals)
                results[f"{kind}/{pct}/{seed}"] = {
                    name: quality(raw["harmful"], s) for name, s in signals(raw).items()
                }
                print(f"{kind} {pct}% s{seed}: {raw['seconds']} s", flush=True)
    write_json(RESULTS, saved)
    print(table(results))


if __name__ == "__main__":
    main()
