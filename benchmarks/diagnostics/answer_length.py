"""How many generated tokens the refusal verdicts need: the evidence for the fine-tune
grid's answer length.

Greedy decoding makes an answer of N tokens the first N tokens of a longer answer, so
cutting finished answers to N tokens and running the refusal detector again shows what
a shorter generation would have measured, without generating anything. For each
evaluated model of one `finetune.py` experiment, this counts the answers whose verdict
changes at each length against the full answers.

    python benchmarks/diagnostics/answer_length.py     # the quick cell measured with 64 tokens

Results go to `real.json` under `answer_length`, and a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import CACHE  # noqa: E402
from rank import ALIGNED, update_results  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from sealft.eval.detector import get_detector  # noqa: E402
from sealft.io import read_jsonl  # noqa: E402

LENGTHS = (8, 16, 24, 32, 48)
CELL = CACHE / "finetune" / "quick" / "self-10-s0" / "seal-default"


def flips(answers: list[str], verdicts: list[bool], tokenizer, detector, n: int) -> int:
    """Answers whose refusal verdict differs when cut to their first n tokens."""
    out = 0
    for a, verdict in zip(answers, verdicts, strict=True):
        cut = tokenizer.decode(tokenizer(a, add_special_tokens=False)["input_ids"][:n])
        out += detector.is_refusal(cut) != verdict
    return out


def measure(cell: Path) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(ALIGNED)
    detector = get_detector("phrases")
    models = {}
    for path in sorted(cell.glob("*/answers.jsonl")) + sorted(cell.glob("seed*/*/answers.jsonl")):
        answers = [r["answer"] for r in read_jsonl(path)]
        verdicts = [detector.is_refusal(a) for a in answers]
        models[path.parent.name] = {
            "answers": len(answers),
            "refusals": sum(verdicts),
            "flips": {str(n): flips(answers, verdicts, tokenizer, detector, n) for n in LENGTHS},
        }
    return {"cell": str(cell.relative_to(CACHE)), "models": models}


def table(result: dict) -> str:
    lines = [
        "| model | answers | refusals | " + " | ".join(f"flips at {n}" for n in LENGTHS) + " |",
        "|---|---|---|" + "---|" * len(LENGTHS),
    ]
    for name, m in result["models"].items():
        cells = " | ".join(str(m["flips"][str(n)]) for n in LENGTHS)
        lines.append(f"| {name} | {m['answers']} | {m['refusals']} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cell", type=Path, default=CELL, help="a finetune.py experiment folder")
    args = ap.parse_args()
    result = measure(args.cell)
    update_results(lambda saved: saved.__setitem__("answer_length", result))
    print(table(result))


if __name__ == "__main__":
    main()
