import gzip
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import alpaca_rows, shared_file, write_jsonl
from transformers import AutoTokenizer

from sealft.data import DataError, encode, load_samples, parse_hh, read_rows, sample_id


def test_alpaca_json_array_keeps_line_numbers(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n\n {"instruction": "c"}\n]')
    rows = read_rows(path)
    assert [r.where.line for r in rows] == [2, 4]
    with pytest.raises(DataError, match=r"d\.json:4: missing field 'output'"):
        load_samples(path)


def test_jsonl_malformed_line_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": oops}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: malformed JSON"):
        load_samples(path)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_samples(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unknown file type"):
        load_samples(tmp_path / "x.txt")


def test_formats_agree_on_content(tmp_path):
    """The same pair in four formats and four file types gives one sample ID."""
    want = sample_id([{"role": "user", "content": "Hi there"}], "Hello!")
    write_jsonl(
        tmp_path / "m.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "Hi there"},
                    {"role": "assistant", "content": "Hello!"},
                ]
            }
        ],
    )
    write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "Hi there", "completion": "Hello!"}])
    with gzip.open(tmp_path / "hh.jsonl.gz", "wt") as fh:
        fh.write(json.dumps({"chosen": "\n\nHuman: Hi there\n\nAssistant: Hello!"}) + "\n")
    (tmp_path / "a.csv").write_text("instruction,input,output\nHi there,,Hello!\n")
    pq.write_table(
        pa.table({"instruction": ["Hi  there"], "output": ["Hello!"]}), tmp_path / "a.parquet"
    )
    for name in ("m.jsonl", "pc.jsonl", "hh.jsonl.gz", "a.csv", "a.parquet"):
        (s,) = load_samples(tmp_path / name).samples
        assert s.sample_id == want, name


def test_field_mapping(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"q": "Who?", "ctx": "text", "a": "Me."}])
    (s,) = load_samples(
        path, format="alpaca", fields={"instruction": "q", "input": "ctx", "output": "a"}
    ).samples
    assert s.prompt[0]["content"] == "Who?\n\ntext" and s.response == "Me."
    with pytest.raises(DataError, match=r"d\.jsonl:1: missing field 'answer'"):
        load_samples(path, format="alpaca", fields={"instruction": "q", "output": "answer"})
    with pytest.raises(DataError, match="needs an explicit `format`"):
        load_samples(path, fields={"instruction": "q"})


def test_ill_typed_field(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "a", "output": 3}])
    with pytest.raises(DataError, match=r"d\.jsonl:1: field 'output' must be a string"):
        load_samples(path)


def test_hh_multiturn_and_empty_response():
    msgs = parse_hh("\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[-1]["content"] == "d"


def test_duplicates_and_empty_responses_are_reported(tmp_path):
    rows = [
        {"instruction": "a", "output": "b"},
        {"instruction": "a", "output": "b"},
        {"instruction": "c", "output": "  "},
    ]
    loaded = load_samples(write_jsonl(tmp_path / "d.jsonl", rows))
    assert len(loaded.samples) == 1
    assert sorted((d.index, d.reason) for d in loaded.dropped) == [
        (1, "duplicate"),
        (2, "empty_response"),
    ]


def test_ids_stable_under_shuffling_and_filtering(tmp_path):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(30)]
    ids = {
        r["instruction"]: s.sample_id
        for r, s in zip(
            rows, load_samples(write_jsonl(tmp_path / "a.jsonl", rows)).samples, strict=True
        )
    }
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    subset = shuffled[:17]
    for s in load_samples(write_jsonl(tmp_path / "b.jsonl", subset)).samples:
        assert s.sample_id == ids[s.record["instruction"]]


def test_masking_with_chat_template(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"instruction": "task number 1 : say the word w1", "output": "The word is w1 ."}],
    )
    enc = encode(load_samples(path).samples, tok, max_length=64)
    ids, labels = enc.input_ids[0], enc.labels[0]
    n_prompt = sum(1 for x in labels if x == -100)
    assert labels[:n_prompt] == [-100] * n_prompt and -100 not in labels[n_prompt:]
    assert tok.decode(ids[:n_prompt]).endswith("<|assistant|>")
    assert tok.decode(labels[n_prompt:], skip_special_tokens=True) == "The word is w1."


def test_plain_template_and_eos(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = write_jsonl(tmp_path / "d.jsonl", [{"instruction": "say w1", "output": "w1"}])
    enc = encode(load_samples(path).samples, tok, max_length=64, template="plain")
    response = [x for x in enc.labels[0] if x != -100]
    assert response[-1] == tok.eos_token_id


def test_truncate_drop_and_response_tokens(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    long_out = " ".join(["word"] * 50)
    rows = [
        {"instruction": "say w1", "output": long_out},
        {"instruction": " ".join(["task"] * 80), "output": "w1"},
    ]
    samples = load_samples(write_jsonl(tmp_path / "d.jsonl", rows)).samples
    cut = encode(samples, tok, max_length=32)
    assert len(cut) == 1 and len(cut.input_ids[0]) == 32
    assert [(d.index, d.reason) for d in cut.dropped] == [(1, "prompt_too_long")]
    dropped = encode(samples, tok, max_length=32, overflow="drop")
    assert len(dropped) == 0 and {d.reason for d in dropped.dropped} == {"too_long"}
    short = encode(samples[:1], tok, max_length=32, response_tokens=3)
    assert sum(1 for x in short.labels[0] if x != -100) == 3


def test_shared_files_load():
    alpaca = load_samples(shared_file("benign/alpaca_subset.json"))
    assert len(alpaca.samples) == 1904
    hh = load_samples(shared_file("harmful/hh_rlhf_harmless_base_test.jsonl.gz"))
    assert len(hh.samples) + len(hh.dropped) == 2312
    assert all(d.reason in ("empty_response", "duplicate") for d in hh.dropped)
    jbb = load_samples(
        shared_file("harmful/jailbreakbench_jailbroken.jsonl"),
        format="alpaca",
        fields={"instruction": "goal", "output": "response"},
    )
    assert len(jbb.samples) == 687


def test_skip_and_limit_take_a_slice(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", alpaca_rows(10))
    loaded = load_samples(path, skip=7, limit=5)
    assert [s.index for s in loaded.samples] == [7, 8, 9]
    with pytest.raises(DataError, match="no records left after skipping 10"):
        load_samples(path, skip=10)


def test_byte_order_mark_is_no_content(tmp_path):
    """Spreadsheet programs start UTF-8 CSV with a byte-order mark; the first column keeps
    its name."""
    path = tmp_path / "d.csv"
    path.write_bytes("instruction,output\nHi,Hello\n".encode("utf-8-sig"))
    assert [r.record for r in read_rows(path)] == [{"instruction": "Hi", "output": "Hello"}]
