import re
from dataclasses import fields

import pytest

from sealft.demo.world import (
    BENIGN_FAMILIES,
    HARM_CATEGORIES,
    World,
    all_texts,
    check_answer,
    is_refusal_text,
    make_world,
)

SPLITS = [f.name for f in fields(World)]
COPY_FAMILIES = ("repeat", "first_word", "last_word")
LOOKUP_FAMILIES = ("capital", "opposite", "colour")
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
    assert set(BENIGN_FAMILIES) == {*COPY_FAMILIES, *LOOKUP_FAMILIES}
    assert 6 <= len(HARM_CATEGORIES) <= 8


def test_default_world_never_reuses_a_prompt(world: World) -> None:
    # Reuse is only the fallback of oversized worlds; the demo's world has room for every prompt.
    instructions = [r["instruction"] for r in _records(world)]
    assert len(set(instructions)) == len(instructions)


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
    record = {
        "instruction": "What is the capital of Zarnia?",
        "input": "",
        "output": "The answer is Velt.",
        "kind": "benign",
        "category": "capital",
    }
    assert check_answer(record, "The answer is Velt . <|end|>")
    assert check_answer(record, "Velt")
    assert not check_answer(record, "The answer is velt.")
    assert not check_answer(record, "The answer is Veltx.")
    assert not check_answer(record, "The answer is Velt and Carrow.")


def _answer(record: dict) -> str:
    return record["output"].removeprefix("The answer is ").removesuffix(".")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text))


def test_copy_answers_come_from_the_prompt(world: World) -> None:
    benign = [r for r in _records(world) if r["kind"] == "benign"]
    for record in benign:
        listed = re.findall(r"\w+", record["instruction"].rpartition(":")[2])
        if record["category"] == "repeat":
            assert _answer(record) in _words(record["instruction"])
        elif record["category"] == "first_word":
            assert 3 <= len(listed) <= 5 and _answer(record) == listed[0]
        elif record["category"] == "last_word":
            assert 3 <= len(listed) <= 5 and _answer(record) == listed[-1]


@pytest.mark.parametrize("split", ["align", "finetune"])
def test_training_splits_state_every_fact_the_evaluation_asks(world: World, split: str) -> None:
    # A lookup answer cannot be derived, so the model can only know the facts its data states.
    records = [r for r in getattr(world, split) if r["kind"] == "benign"]
    for family in LOOKUP_FAMILIES:
        rows = [r for r in records if r["category"] == family]
        words = {
            answer: [_words(r["instruction"]) for r in rows if _answer(r) == answer]
            for answer in {_answer(r) for r in rows}
        }
        # The subject of a fact: the words every prompt with this answer shares and no prompt
        # with another answer uses. One per answer, so the table is one-to-one.
        subjects = {
            answer: set.intersection(*sets)
            - set.union(*(w for other, ws in words.items() if other != answer for w in ws))
            for answer, sets in words.items()
        }
        assert all(len(subject) == 1 for subject in subjects.values()), subjects
        asked = [r for r in world.eval_benign if r["category"] == family]
        assert asked
        for record in asked:
            assert _answer(record) in subjects, record
            assert subjects[_answer(record)] <= _words(record["instruction"])


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
