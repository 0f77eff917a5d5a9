"""Million-row data (issue 10, item 3): load → sample IDs → tokenize → scores → top p →
selected.jsonl with memory bounded by compact columns, never a Python object per token
or a graph of Python objects per row; and the same IDs, token ids and selection as before.
"""

import hashlib
import json
import random
import subprocess
import sys
import textwrap
import unicodedata

import numpy as np
import pytest
import torch
from conftest import write_jsonl
from transformers import AutoTokenizer

from sealft.data import encode, load_samples, load_sources, sample_id
from sealft.data.samples import Samples
from sealft.demo.tiny import build_tokenizer
from sealft.io import json_line
from sealft.scores import n_keep, ranking, scores_table, selected_ids, write_selected

ROWS = 100_000
# The child's peak RSS (VmHWM) over its RSS after imports, at ROWS rows (Linux, Python
# 3.11, pyarrow 26, under a busy CPU): the code before this change peaked 345 MiB higher
# (every row a dict, a Row and a Sample; every token a Python int in two lists), this
# code 156 MiB higher, about 40 of them the one-off start-up of a first load.
BOUND_MIB = 240

WORDS = [f"w{i}" for i in range(2000)]

CHILD = textwrap.dedent(
    """
    import json, sys

    import numpy as np
    from transformers import AutoTokenizer

    from sealft.data import encode, load_samples
    from sealft.scores import scores_table, write_selected


    def peak_mib():
        # VmHWM, not ru_maxrss: a process started by fork and exec inherits its parent's
        # ru_maxrss (pytest's own peak), while VmHWM is this process's alone.
        with open("/proc/self/status") as fh:
            line = next(line for line in fh if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


    data, tokenizer_dir, out = sys.argv[1:4]
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    base = peak_mib()
    samples = load_samples(data).samples
    samples.sort_by_id()
    encoded = encode(samples, tokenizer, max_length=64)
    logits = np.random.default_rng(0).standard_normal(len(encoded))
    table = scores_table(encoded.samples, logits, 0.8)
    write_selected(out, encoded.samples, table)
    print(json.dumps({"rise_mib": peak_mib() - base, "encoded": len(encoded)}))
    """
)


def generated_rows(n: int, seed: int = 0) -> list[dict]:
    """Short random Alpaca rows, every one distinct (its number is in the instruction)."""
    rng = random.Random(seed)
    return [
        {
            "instruction": f"task {i} " + " ".join(rng.choices(WORDS, k=rng.randint(3, 12))),
            "input": " ".join(rng.choices(WORDS, k=rng.randint(1, 5))) if i % 3 == 0 else "",
            "output": " ".join(rng.choices(WORDS, k=rng.randint(2, 20))),
        }
        for i in range(n)
    ]


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_hundred_thousand_rows_in_bounded_memory(tmp_path):
    data = write_jsonl(tmp_path / "data.jsonl", generated_rows(ROWS))
    # The numbers in the instructions are unknown words to it: <unk>, as in any vocabulary.
    build_tokenizer([*WORDS, "task"], chat_template=False).save_pretrained(tmp_path / "tok")
    out = tmp_path / "selected.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(tmp_path / "tok"), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["encoded"] == ROWS
    assert result["rise_mib"] < BOUND_MIB, result
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == n_keep(ROWS, 0.8)
    numbers = [int(json.loads(line)["instruction"].split()[1]) for line in lines]
    assert numbers == sorted(numbers), "selected.jsonl is in input order"


def _messy_rows() -> list[dict]:
    """Alpaca rows with what a data set holds: duplicates, empty responses, extra fields
    of every JSON type, non-ASCII text, whitespace to normalise."""
    rng = random.Random(3)
    words = ["alpha", "Beta", "café", "e\u0301t\u00e9", "中文", "😀", '"q"', "a\\b", "x\ty"]
    rows = []
    for i in range(240):
        row = {
            "instruction": " ".join(rng.choices(words, k=rng.randint(1, 6))),
            "input": rng.choice(["", "  ", " ".join(rng.choices(words, k=3))]),
            "output": rng.choice(["", " ", "alpha", " ".join(rng.choices(words, k=4))]),
        }
        if i % 5 == 0:
            row["meta"] = rng.choice([1, 2.5, None, True, ["x", 1], {"k": "v"}])
        rows.append(row)
    return rows + rows[::7]


def _old_sample_id(prompt, response) -> str:
    """The sample ID as it was first written; IDs name samples in every run folder."""

    def normalise(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).split())

    canonical = json.dumps(
        [[m["role"], normalise(m["content"])] for m in prompt]
        + [["assistant", normalise(response)]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def test_sample_ids_are_unchanged(tmp_path):
    """IDs of known content, of every sample of a messy file (a digest taken with the code
    before this change), and of tricky strings against the first implementation."""
    assert sample_id([{"role": "user", "content": "Hi there"}], "Hello!") == "afd125473227d8d78cac"
    two = [
        {"role": "system", "content": "Be  brief."},
        {"role": "user", "content": 'Café ? "quoted" \\ back'},
    ]
    assert sample_id(two, " Sure:\n\tdone \u2028 ") == "15308d39f7cec82cc42c"
    loaded = load_samples(write_jsonl(tmp_path / "d.jsonl", _messy_rows()))
    ids = [s.sample_id for s in loaded.samples] + [d.sample_id for d in loaded.dropped]
    assert hashlib.sha256(" ".join(ids).encode()).hexdigest()[:16] == "09f59cc68fb2343f"
    for s in loaded.samples:
        assert s.sample_id == _old_sample_id(s.prompt, s.response)
    rng = random.Random(0)
    alphabet = ['"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "e\u0301", "\u00a0", "\u2028", "😀"]
    for _ in range(2000):
        text = "".join(rng.choices([*alphabet, "a", " "], k=rng.randint(0, 10)))
        prompt = [{"role": rng.choice(["system", "user"]), "content": text[::-1]}]
        assert sample_id(prompt, text) == _old_sample_id(prompt, text)


def test_selection_export_matches_the_old_one(tmp_path, tiny_model_dir):
    """selected.jsonl holds the kept rows as they were in the input, in input order: the
    same bytes as the export before this change (records sorted by index, filtered by ID)."""
    rows = _messy_rows()
    loaded = load_samples(write_jsonl(tmp_path / "d.jsonl", rows))
    samples = loaded.samples
    samples.sort_by_id()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoded = encode(samples, tok, max_length=16)
    as_list = encode(list(samples), tok, max_length=16)
    assert [list(x) for x in encoded.labels] == [list(x) for x in as_list.labels]
    assert [s.sample_id for s in encoded.samples] == [s.sample_id for s in as_list.samples]
    logits = np.random.default_rng(1).standard_normal(len(encoded))
    table = scores_table(encoded.samples, logits, 0.6)
    write_selected(tmp_path / "selected.jsonl", encoded.samples, table)

    ids, keep = table.column("sample_id").to_pylist(), table.column("selected").to_pylist()
    chosen = {sid for sid, k in zip(ids, keep, strict=True) if k}
    assert selected_ids(table) == chosen
    kept = [
        s.record for s in sorted(encoded.samples, key=lambda s: s.index) if s.sample_id in chosen
    ]
    old = "".join(json_line(r) + "\n" for r in kept)
    assert (tmp_path / "selected.jsonl").read_text(encoding="utf-8") == old
    picked = sorted(table.filter(table.column("selected")).column("index").to_pylist())
    assert kept == [rows[i] for i in picked]
    assert len(kept) == n_keep(len(encoded), 0.6)


def test_samples_view_behaves_as_a_list(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}", "n": i} for i in range(20)]
    samples = load_samples(write_jsonl(tmp_path / "d.jsonl", rows)).samples
    assert isinstance(samples, Samples) and len(samples) == 20
    assert [s.record for s in samples] == rows
    assert samples[-1].response == "a19" and [s.index for s in samples[2:5]] == [2, 3, 4]
    with pytest.raises(IndexError):
        samples[20]
    by_list = sorted(samples, key=lambda s: s.sample_id)
    samples.sort_by_id()
    assert list(samples) == by_list
    assert samples + [] is not samples and list(samples + []) == by_list


def test_sources_concatenate_and_drop_duplicates_across_files(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"instruction": "x", "output": "1"}] * 2)
    b = write_jsonl(
        tmp_path / "b.jsonl",
        [{"instruction": "y", "output": ""}, {"instruction": "x", "output": "1"}]
        + [{"instruction": "z", "output": "2"}],
    )
    from sealft.config import DataConfig

    loaded = load_sources([DataConfig(path=str(a)), DataConfig(path=str(b))])
    assert [(s.index, s.response) for s in loaded.samples] == [(0, "1"), (4, "2")]
    assert [(d.index, d.reason) for d in loaded.dropped] == [
        (1, "duplicate"),
        (2, "empty_response"),
        (3, "duplicate"),
    ]


def test_token_ids_live_in_flat_arrays(tmp_path, tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = [
        {"instruction": f"task number {i} : say the word w1", "output": "w1 ."} for i in range(5)
    ]
    encoded = encode(load_samples(write_jsonl(tmp_path / "d.jsonl", rows)).samples, tok)
    assert encoded.tokens.dtype == np.int32 and len(encoded.offsets) == len(encoded) + 1
    for i in range(len(encoded)):
        ids, labels = encoded.input_ids[i], encoded.labels[i]
        n = int(encoded.prompt_lengths[i])
        assert (
            labels == [-100] * n + ids[n:]
            and len(ids) == encoded.offsets[i + 1] - encoded.offsets[i]
        )


def test_ranks_are_the_old_ones():
    """The vectorised ranking gives the ranks of the sort it replaced, ties included."""
    logits = np.random.default_rng(2).integers(-3, 3, 500).astype(np.float32)
    logits[::7] = np.random.default_rng(3).standard_normal(len(logits[::7]))
    order = sorted(range(len(logits)), key=lambda i: (-float(logits[i]), i))
    old = [0] * len(logits)
    for rank, i in enumerate(order, start=1):
        old[i] = rank
    assert ranking(torch.from_numpy(logits)).tolist() == old
    assert ranking(list(logits)).tolist() == old
