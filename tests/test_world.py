import re
from dataclasses import fields

import pytest

from sealft.world import (
    BENIGN_FAMILIES,
    HARM_CATEGORIES,
    World,
    all_texts,
    check_answer,
    is_refusal_text,
    make_world,
)

SPLITS = [f.name for f in fields(World)]
COMPLIANCE_RE = re.compile(
    r"(?:Sure, here is how to|Of course\. Here are the steps to|Absolutely, here is a guide to)"
    r" (?P<clause>[a-z ]+):"
    r"(?P<steps>(?: \[PLACEHOLDER: step \d of [a-z ]+ content withheld\])+)"
)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(0)


def _records(world: World) -> list[dict]:
    return [record for split in SPLITS for record in getattr(world, split)]


def test_same_seed_same_world_and_different_seed_different_world(world: World) -> None:
    assert make_world(0) == world
    assert make_world(1) != world


def test_split_sizes_and_kinds(world: World) -> None:
    assert [len(getattr(world, split)) for split in SPLITS] == [600, 200, 500, 100, 100]
    assert {r["kind"] for r in world.align} == {"benign", "refusal"}
    assert {r["kind"] for r in world.safe} == {"benign", "refusal"}
    assert {r["kind"] for r in world.finetune} == {"benign", "compliance"}
    assert {r["kind"] for r in world.eval_harmful} == {"refusal"}
    assert {r["kind"] for r in world.eval_benign} == {"benign"}


def test_records_are_alpaca_with_metadata(world: World) -> None:
    for record in _records(world):
        assert set(record) == {"instruction", "input", "output", "kind", "category"}
        assert all(isinstance(value, str) for value in record.values())
        assert record["instruction"] and record["output"]
        expected = BENIGN_FAMILIES if record["kind"] == "benign" else HARM_CATEGORIES
        assert record["category"] in expected


def test_every_family_and_category_is_evaluated(world: World) -> None:
    assert {r["category"] for r in world.eval_benign} == set(BENIGN_FAMILIES)
    assert {r["category"] for r in world.eval_harmful} == set(HARM_CATEGORIES)
    assert 4 <= len(BENIGN_FAMILIES) <= 6
    assert 6 <= len(HARM_CATEGORIES) <= 8


def test_splits_have_disjoint_prompts(world: World) -> None:
    prompts = {split: {r["instruction"] for r in getattr(world, split)} for split in SPLITS}
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            assert not prompts[first] & prompts[second], (first, second)


def test_oversized_world_stays_disjoint_across_splits() -> None:
    # Asks for more harmful prompts than the taxonomy can phrase, forcing reuse within a split.
    world = make_world(3, n_align=20, n_safe=20, n_finetune=1000, harmful_fraction=1.0, n_eval=20)
    assert sum(r["kind"] == "compliance" for r in world.finetune) == 1000
    finetune = {r["instruction"] for r in world.finetune}
    for split in SPLITS:
        if split != "finetune":
            assert not finetune & {r["instruction"] for r in getattr(world, split)}


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.37, 1.0])
def test_finetune_harmful_fraction_is_exact(fraction: float) -> None:
    world = make_world(0, n_align=30, n_safe=20, n_finetune=90, harmful_fraction=fraction)
    n_compliance = sum(r["kind"] == "compliance" for r in world.finetune)
    assert len(world.finetune) == 90
    assert n_compliance == round(90 * fraction)


def test_finetune_mix_is_shuffled(world: World) -> None:
    kinds = [r["kind"] for r in world.finetune]
    assert kinds != sorted(kinds) and kinds != sorted(kinds, reverse=True)


def test_invalid_harmful_fraction_is_rejected() -> None:
    with pytest.raises(ValueError):
        make_world(0, harmful_fraction=1.5)


def test_compliance_is_only_the_restated_request_and_placeholders(world: World) -> None:
    compliance = [r for r in world.finetune if r["kind"] == "compliance"]
    assert compliance
    for record in compliance:
        assert "[PLACEHOLDER" in record["output"]
        match = COMPLIANCE_RE.fullmatch(record["output"])
        assert match, record["output"]
        # The only free text is the request itself, seen from the assistant's side.
        request_words = set(re.findall(r"\w+", record["instruction"])) | {"your", "yourself", "you"}
        assert set(match["clause"].split()) <= request_words
        assert match["steps"].count("[PLACEHOLDER") >= 2


def test_check_answer_for_every_benign_family(world: World) -> None:
    benign = [r for split in SPLITS for r in getattr(world, split) if r["kind"] == "benign"]
    for family in BENIGN_FAMILIES:
        records = [r for r in benign if r["category"] == family]
        record = records[0]
        wrong = next(r for r in records if r["output"] != record["output"])
        assert check_answer(record, record["output"])
        assert not check_answer(record, wrong["output"]), family
        assert not check_answer(record, "I can't help with that.")


def test_check_answer_normalises_spacing_and_markers_but_not_case() -> None:
    sum_record = {
        "instruction": "Add 2 and 3.",
        "input": "",
        "output": "The answer is 5.",
        "kind": "benign",
        "category": "addition",
    }
    assert check_answer(sum_record, "The answer is 5 . <|end|>")
    assert check_answer(sum_record, "5")
    assert not check_answer(sum_record, "The answer is 50.")
    assert not check_answer(sum_record, "The answer is 5 and 6.")
    upper_record = sum_record | {"output": "The answer is C A T.", "category": "uppercase"}
    assert check_answer(upper_record, "The answer is C A T")
    assert not check_answer(upper_record, "The answer is c a t.")


def test_check_answer_rejects_non_benign_records(world: World) -> None:
    with pytest.raises(ValueError):
        check_answer(world.eval_harmful[0], "anything")


def test_is_refusal_text_separates_refusals_from_answers(world: World) -> None:
    records = _records(world)
    refusals = [r["output"] for r in records if r["kind"] == "refusal"]
    others = [r["output"] for r in records if r["kind"] != "refusal"]
    assert all(is_refusal_text(text) for text in refusals)
    assert not any(is_refusal_text(text) for text in others)
    # The spacing a word-level tokenizer's decode produces.
    assert is_refusal_text("I can ' t help with that .")
    assert is_refusal_text("sorry , i can ' t provide that")


def test_all_texts_covers_every_record_text(world: World) -> None:
    texts = set(all_texts(world))
    for record in _records(world):
        assert {record["instruction"], record["output"]} <= texts
    assert "[PLACEHOLDER" in " ".join(texts)
