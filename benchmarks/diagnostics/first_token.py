"""Why the aligned model over-refuses: its refusals are decided by the first answer token.

Nearly every alignment refusal opens with "I" ("I'm sorry", 70%), "As" ("As an AI", 28%)
or "No", while benign answers open with many different tokens. Greedy decoding takes the
single most likely first token, so a model that gives a refusal opener 40% of its mass
refuses whenever no single benign opener beats it. This measures, with one forward pass
per prompt (no generation), for each evaluation set:

- the mean probability of the three refusal openers as the first answer token;
- the share of prompts whose most likely first token is one of them (compare with the
  greedy refusal rate that align.py measured by generating);
- the AUROC of that probability between the held-out harmful prompts and each benign set
  (0.5: the model cannot tell them apart at the first token).

    python benchmarks/diagnostics/first_token.py   # the aligned model and the as-shipped one

Results go to `real.json` under `first_token`, and a Markdown table is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "real"))  # data.py, rank.py

from data import eval_prompts, eval_sets, smollm_gguf  # noqa: E402
from rank import ALIGNED, update_results  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from sealft.data.tokenize import prompt_ids, user_prompt_text  # noqa: E402
from sealft.model.load import load_model_and_tokenizer  # noqa: E402

OPENERS = ("I", "As", "No")
HARMFUL = "harmful_heldout"
MAX_PROMPTS = 300  # per set; the first ones, so every run reads the same prompts


def opener_probabilities(model, tok, prompts: list[str]) -> list[tuple[float, bool]]:
    """(probability of a refusal opener, is one the most likely token) per prompt."""
    openers = [tok.encode(w, add_special_tokens=False)[0] for w in OPENERS]
    out = []
    for text in prompts:
        ids = prompt_ids(tok, user_prompt_text(tok, text, "auto"), "auto")
        with torch.no_grad():
            probs = model(torch.tensor([ids])).logits[0, -1].float().softmax(-1)
        out.append((float(probs[openers].sum()), int(probs.argmax()) in openers))
    return out


def measure(path: str) -> dict:
    """First-token refusal figures of the model at `path` (a folder, or a GGUF file)."""
    model, tok = load_model_and_tokenizer(path)
    model.eval()
    found = {}
    for name, (file, kind) in eval_sets().items():
        prompts = eval_prompts(file, kind)[:MAX_PROMPTS]
        found[name] = (kind, opener_probabilities(model, tok, prompts))
    harmful = [p for p, _ in found[HARMFUL][1]]
    rows = {}
    for name, (kind, pairs) in found.items():
        probs = [p for p, _ in pairs]
        row = {
            "kind": kind,
            "n": len(pairs),
            "mean_opener_probability": round(sum(probs) / len(probs), 3),
            "argmax_is_opener": round(sum(top for _, top in pairs) / len(pairs), 3),
        }
        if kind == "benign":
            y = [1] * len(harmful) + [0] * len(probs)
            row["auroc_vs_harmful"] = round(float(roc_auc_score(y, harmful + probs)), 3)
        rows[name] = row
    return rows


def markdown(results: dict) -> str:
    lines = [
        "| model | prompt set | n | mean P(opener) | argmax is an opener | AUROC vs harmful |",
        "|---|---|---|---|---|---|",
    ]
    for model, rows in results.items():
        for name, r in rows.items():
            auroc = r.get("auroc_vs_harmful", "–")
            lines.append(
                f"| {model} | {name} | {r['n']} | {r['mean_opener_probability']:.3f} "
                f"| {r['argmax_is_opener']:.3f} | {auroc} |"
            )
    return "\n".join(lines)


def main() -> None:
    results = {"aligned": measure(str(ALIGNED)), "as-shipped": measure(str(smollm_gguf()))}
    update_results(lambda saved: saved.__setitem__("first_token", results))
    print(markdown(results))


if __name__ == "__main__":
    main()
