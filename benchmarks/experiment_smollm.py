"""`seal run` on real data: is SEAL worth it for SmolLM2-135M-Instruct?

The section-6 mixture (benchmarks/section6.py): 300 Alpaca rows + 100 JailbreakBench
jailbroken answers to fine-tune on, the aligned SmolLM2 model cached by section6.py, and
the safe set that separated best there (200 SafeInstr refusals + 200 Alpaca answers).
Every method of the paper is fine-tuned (LoRA r16 on q/v, lr 3e-4, 2 epochs, batch 8) and
evaluated by its refusals to 48 AdvBench prompts (greedy, 40 tokens, section 6's phrase
rule) and its held-out loss on 100 Alpaca and 100 SafeInstr rows nobody trained on.

    python benchmarks/section6.py --only defaults   # builds the aligned model if needed
    python benchmarks/experiment_smollm.py [--seeds 0 1 2]

The experiment folder is benchmarks/.cache/experiment (re-runs reuse finished steps); the
table lands in benchmarks/results/experiment_smollm.md and the numbers in
benchmarks/results/experiment_smollm.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from section6 import CACHE, MAX_LEN, advbench_prompts, held_out, mixture, refusals

from sealft.config import ExperimentRecipeConfig
from sealft.io import write_jsonl
from sealft.recipes.experiment import run_experiment

RESULTS = Path(__file__).resolve().parent / "results"


def write_alpaca(path: Path, samples) -> str:
    rows = [
        {"instruction": s.prompt[-1]["content"], "input": "", "output": s.response} for s in samples
    ]
    write_jsonl(path, rows)
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=float, default=2)
    args = ap.parse_args()
    model = CACHE / "smollm2-aligned"
    if not (model / "config.json").exists():
        raise SystemExit("run benchmarks/section6.py first: it builds the aligned model")
    _, finetune, _, safe, spare = mixture()
    benign, safety = held_out()
    data = CACHE / "experiment-data"
    data.mkdir(parents=True, exist_ok=True)
    prompts = advbench_prompts()
    cfg = ExperimentRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(model)},
            "data": {"path": write_alpaca(data / "finetune.jsonl", finetune)},
            "safe": {"path": write_alpaca(data / "safe.jsonl", safe[:200] + spare)},
            "tokenize": {"max_length": MAX_LEN},
            "sft": {"lr": 3e-4, "epochs": args.epochs, "batch_size": 8},
            "safeinstr": {
                "data": {"path": write_alpaca(data / "safeinstr.jsonl", safe[200:400])},
                "count": 100,
            },
            "eval": {
                "benign": {"path": write_alpaca(data / "eval_benign.jsonl", benign)},
                "safety": {"path": write_alpaca(data / "eval_safety.jsonl", safety)},
            },
            "seeds": args.seeds,
            "p": 0.8,
            "output_dir": str(CACHE / "experiment"),
        }
    )
    results = run_experiment(
        cfg,
        extra_eval=lambda m, t: {"refusal_rate": refusals(m, t, prompts) / len(prompts)},
        extra_eval_name="advbench48-greedy40-detector-phrases-v1",
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "experiment_smollm.json").write_text(json.dumps(results, indent=1))
    shutil.copy(CACHE / "experiment" / "results.md", RESULTS / "experiment_smollm.md")


if __name__ == "__main__":
    main()
