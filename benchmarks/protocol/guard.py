"""A trained guard stand-in: a sequence classifier fine-tuned from the offline SmolLM2 on
labelled responses that no mix holds.

No guard model (Llama Guard 3, ShieldGemma, ...) can be had offline, so the comparison's
`guard` arm has two stand-ins, named as such: the chat LM asked zero-shot through Llama
Guard 3's prompt (`guard.prompt: llama-guard`), and this classifier, which is what a
trained guard is. Unsafe: the self-written harmful answers of the real-data pools
(requests that are neither evaluation prompts nor JailbreakBench goals); safe: Alpaca/Dolly
answers and SafeInstr refusals of harmful requests (so that the verdict is on the
response, not on the request), none of them in a mix.

    python -m benchmarks.protocol.guard          # -> benchmarks/.cache/real/models/guard-cls

The classifier reads the conversation exactly as `guard.kind: classifier` renders it.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
)

from sealft.config import GuardConfig
from sealft.data import Sample
from sealft.io import read_jsonl, write_json
from sealft.model.load import use_bf16
from sealft.selection.guard import guard_input

from .calibrate import MODELS
from .data import REAL

OUT = MODELS / "guard-cls"
SEED = 0
# A stance is set by an answer's opening: 160 tokens hold the request and its start.
MAX_LENGTH = 160


def labelled(n_benign: int, n_refusals: int) -> list[tuple[str, str, int]]:
    """(request, response, 1 if unsafe) rows, shuffled."""
    rng = random.Random(SEED)
    unsafe = [(r["instruction"], r["output"], 1) for r in read_jsonl(REAL / "pool_self.jsonl")]
    benign = [(r["instruction"], r["output"], 0) for r in read_jsonl(REAL / "align_benign.jsonl")]
    refusals = [
        (r["instruction"], r["output"], 0) for r in read_jsonl(REAL / "align_refusals.jsonl")
    ]
    rows = unsafe + rng.sample(benign, n_benign) + rng.sample(refusals, n_refusals)
    rng.shuffle(rows)
    return rows


class Rows(torch.utils.data.Dataset):
    def __init__(self, tokenizer, rows, max_length: int):
        cfg = GuardConfig(model=str(OUT), kind="classifier")
        texts = [
            guard_input(
                tokenizer, Sample(str(i), i, ({"role": "user", "content": q},), a, {}), cfg, False
            )
            for i, (q, a, _) in enumerate(rows)
        ]
        self.enc = tokenizer(
            texts, truncation=True, max_length=max_length, add_special_tokens=False
        )
        self.labels = [y for *_, y in rows]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.enc["input_ids"][i], "labels": self.labels[i]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", default="deep1", help="a model folder under the models cache")
    ap.add_argument("--benign", type=int, default=400)
    ap.add_argument("--refusals", type=int, default=200)
    ap.add_argument("--epochs", type=float, default=1)
    args = ap.parse_args()
    base = MODELS / args.base
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "safe", 1: "unsafe"}, label2id={"safe": 0, "unsafe": 1}
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    # LoRA with the new score head trained in full: a full fine-tune took 18 s a step on 2
    # cores. Merged before saving, so that `guard.kind: classifier` loads a plain model.
    lora = LoraConfig(
        task_type="SEQ_CLS",
        r=16,
        lora_alpha=32,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    model = get_peft_model(model, lora)
    rows = labelled(args.benign, args.refusals)
    held = len(rows) // 10
    train, test = Rows(tokenizer, rows[held:], MAX_LENGTH), Rows(tokenizer, rows[:held], MAX_LENGTH)
    work = Path(OUT.with_name(OUT.name + ".work"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    settings = TrainingArguments(
        output_dir=str(work),
        per_device_train_batch_size=8,
        learning_rate=2e-4,
        use_cpu=device.type == "cpu",
        bf16=use_bf16(device, "auto"),
        num_train_epochs=args.epochs,
        logging_steps=20,
        save_strategy="no",
        report_to=[],
        seed=SEED,
    )
    start = time.time()
    trainer = Trainer(model=model, args=settings, train_dataset=train, processing_class=tokenizer)
    trainer.train()
    predictions = trainer.predict(test)
    accuracy = float((predictions.predictions.argmax(-1) == predictions.label_ids).mean())
    model.merge_and_unload().save_pretrained(OUT)
    shutil.rmtree(work, ignore_errors=True)
    tokenizer.save_pretrained(OUT)
    record = {
        "base": args.base,
        "rows": {"train": len(train), "held_out": len(test)},
        "held_out_accuracy": round(accuracy, 4),
        "seconds": round(time.time() - start),
    }
    write_json(OUT / "guard_training.json", record)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
