"""`seal demo`: the whole selection story offline, in a couple of minutes on a laptop CPU.

1. Generate a seeded safety world (sealft.world): benign tasks with checkable answers,
   harmful requests answered with refusals or with placeholder compliance.
2. Build a tiny word-level model (sealft.tiny) and train it into an aligned state: it
   refuses the harmful requests and solves the tasks.
3. Write the fine-tuning mix (20% harmful compliance) and the safe set as JSONL files and
   run `seal select` on them with the default selector settings.
4. Report the AUROC of ranking the harmful samples last and how many survive at p = 0.8.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score

from .config import SelectConfig
from .data import Sample, encode, pad_id
from .finetune import train_sft
from .pipeline import atomic_write, run_select
from .tiny import tiny_pair
from .world import COMPLIANCE, World, all_texts, check_answer, is_refusal_text, make_world

ALIGN_EPOCHS, ALIGN_LR, ALIGN_BATCH = 12, 1e-3, 16
MODEL = {"hidden_size": 64, "num_layers": 2, "num_heads": 4}


def _as_samples(records: list[dict]) -> list[Sample]:
    return [
        Sample(str(i), i, ({"role": "user", "content": r["instruction"]},), r["output"], r)
        for i, r in enumerate(records)
    ]


def generate(
    model, tokenizer, prompts: list[str], max_new_tokens: int = 24, batch_size: int = 64
) -> list[str]:
    """Greedy answers, batched with left padding."""
    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
        )
        for p in prompts
    ]
    out: list[str] = []
    model.eval()
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        )
        with torch.no_grad():
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    tokenizer.padding_side = "right"
    return out


def behaviour(model, tokenizer, world: World) -> dict[str, float]:
    """Refusal rate on held-out harmful prompts, accuracy on held-out benign tasks."""
    harmful = generate(model, tokenizer, [r["instruction"] for r in world.eval_harmful])
    benign = generate(model, tokenizer, [r["instruction"] for r in world.eval_benign])
    return {
        "refusal_rate": sum(map(is_refusal_text, harmful)) / len(harmful),
        "benign_accuracy": sum(
            check_answer(r, g) for r, g in zip(world.eval_benign, benign, strict=True)
        )
        / len(benign),
    }


def align(model, tokenizer, world: World, *, seed: int, progress: bool) -> None:
    data = encode(_as_samples(world.align), tokenizer, max_length=128)
    train_sft(
        model,
        data,
        lr=ALIGN_LR,
        epochs=ALIGN_EPOCHS,
        batch_size=ALIGN_BATCH,
        pad=pad_id(tokenizer),
        device=torch.device("cpu"),
        precision="fp32",
        seed=seed,
        progress=progress,
        desc="align",
    )


def run_demo(
    output_dir: str | Path = "runs/demo",
    *,
    seed: int = 0,
    progress: bool = True,
    overrides: dict | None = None,
) -> dict:
    start = time.time()
    torch.manual_seed(seed)
    out = Path(output_dir)
    world = make_world(seed)
    tokenizer, model = tiny_pair(all_texts(world), seed=seed, **MODEL)
    print(
        f"world: {len(world.align)} alignment, {len(world.safe)} safe, "
        f"{len(world.finetune)} fine-tuning rows "
        f"({sum(r['kind'] == COMPLIANCE for r in world.finetune)} harmful compliance)"
    )
    align(model, tokenizer, world, seed=seed, progress=progress)
    aligned = behaviour(model, tokenizer, world)
    print(
        f"aligned tiny model: refuses {aligned['refusal_rate']:.0%} of held-out harmful "
        f"requests, solves {aligned['benign_accuracy']:.0%} of held-out tasks"
    )

    data_dir = out / "world"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("finetune", "safe"):
        atomic_write(
            data_dir / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in getattr(world, name))
        )
    settings = {
        "model": {"name_or_path": "(built in memory by sealft.tiny)"},
        "data": {"path": str(data_dir / "finetune.jsonl")},
        "safe": {"path": str(data_dir / "safe.jsonl")},
        "tokenize": {"max_length": 128},
        "train": {"lr": 3e-3, "batch_size": 16, "precision": "fp32"},
        "output_dir": str(out / "select"),
        "seed": seed,
    }
    for key, value in (overrides or {}).items():
        section, _, name = key.rpartition(".")
        (settings.setdefault(section, {}) if section else settings)[name] = value
    cfg = SelectConfig.model_validate(settings)
    result = run_select(cfg, overwrite=True, progress=progress, model=model, tokenizer=tokenizer)

    harmful = {i for i, r in enumerate(world.finetune) if r["kind"] == COMPLIANCE}
    table = result.scores.to_pydict()
    labels = [int(i in harmful) for i in table["index"]]
    auroc = roc_auc_score(labels, [-x for x in table["logit"]])
    survived = sum(lab for lab, keep in zip(labels, table["selected"], strict=True) if keep)
    summary = {
        "auroc": round(float(auroc), 4),
        "harmful_total": sum(labels),
        "harmful_kept": survived,
        "kept": sum(table["selected"]),
        "p": cfg.p,
        "aligned": aligned,
        "seconds": round(time.time() - start, 1),
    }
    atomic_write(out / "summary.json", json.dumps(summary, indent=1))
    print(f"selector AUROC, harmful ranked last: {summary['auroc']:.3f}")
    print(
        f"harmful samples kept at p = {cfg.p}: {survived} of {sum(labels)} "
        f"(kept {summary['kept']} of {len(labels)} samples)"
    )
    print(f"done in {summary['seconds']:.0f} s; outputs in {out}/")
    return summary
