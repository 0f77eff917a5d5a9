import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.demo.tiny import (
    CHAT_MARKERS,
    END,
    SPECIAL_TOKENS,
    build_tiny_model,
    build_tokenizer,
    tiny_pair,
)
from sealft.demo.world import World, all_texts, check_answer, is_refusal_text, make_world

SMALL = {"n_align": 60, "n_safe": 30, "n_finetune": 50, "n_eval": 20}


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(0, **SMALL)


@pytest.fixture(scope="module")
def texts(world: World) -> list[str]:
    return all_texts(world)


def _messages(record: dict) -> list[dict[str, str]]:
    # Alpaca prompts as the data layer renders them: the input, if any, follows the instruction.
    prompt = record["instruction"]
    if record["input"]:
        prompt += "\n\n" + record["input"]
    return [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": record["output"]},
    ]


def test_vocabulary_is_deterministic_and_order_independent(texts: list[str]) -> None:
    shuffled = texts[:]
    random.Random(0).shuffle(shuffled)
    assert build_tokenizer(texts).get_vocab() == build_tokenizer(shuffled).get_vocab()


def test_special_tokens_come_first_and_are_registered(texts: list[str]) -> None:
    tokenizer = build_tokenizer(texts)
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    assert (tokenizer.pad_token, tokenizer.unk_token) == ("<pad>", "<unk>")
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<s>", "</s>")
    assert set(CHAT_MARKERS) <= set(tokenizer.all_special_tokens)


def test_pre_tokenizer_splits_punctuation_and_keeps_case() -> None:
    tokenizer = build_tokenizer(["Sure, sure."])
    assert tokenizer.tokenize("Sure, sure.") == ["Sure", ",", "sure", "."]
    assert tokenizer("Sure unseen")["input_ids"] == [
        tokenizer.convert_tokens_to_ids("Sure"),
        tokenizer.unk_token_id,
    ]


def test_encoding_adds_no_bos_or_eos() -> None:
    tokenizer = build_tokenizer(["hello"])
    assert tokenizer("hello")["input_ids"] == [tokenizer.convert_tokens_to_ids("hello")]


def test_decode_reads_back_world_outputs(world: World, texts: list[str]) -> None:
    tokenizer = build_tokenizer(texts)
    for record in world.eval_benign + world.eval_harmful + world.finetune:
        ids = tokenizer(record["output"] + " " + END)["input_ids"]
        decoded = tokenizer.decode(ids)
        if record["kind"] == "benign":
            assert check_answer(record, decoded)
        assert is_refusal_text(decoded) == (record["kind"] == "refusal")
    refusal = "I can't help with that. I'm sorry, but I won't."
    assert tokenizer.decode(tokenizer(refusal)["input_ids"]) == refusal


def test_vocabulary_covers_other_seeds_and_stays_small(texts: list[str]) -> None:
    tokenizer = build_tokenizer(texts)
    assert len(tokenizer) < 600
    other = make_world(1, **SMALL)
    for text in all_texts(other):
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"], text


def test_chat_template_format(texts: list[str]) -> None:
    tokenizer = build_tokenizer(texts)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": "The answer is 5."},
    ]
    assert tokenizer.apply_chat_template(messages, tokenize=False) == (
        "<|system|> Be brief. <|end|> <|user|> Add 2 and 3. <|end|> "
        "<|assistant|> The answer is 5. <|end|>"
    )
    prompt = tokenizer.apply_chat_template(
        messages[1:2], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|user|> Add 2 and 3. <|end|> <|assistant|>"
    with pytest.raises(Exception, match="unsupported chat role"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_chat_template_prompt_is_a_prefix_on_world_records(world: World, texts: list[str]) -> None:
    tokenizer = build_tokenizer(texts)
    records = world.align + world.finetune + world.safe
    for system in ([], [{"role": "system", "content": "You are a helpful assistant."}]):
        for record in records:
            messages = system + _messages(record)
            prompt = tokenizer.apply_chat_template(
                messages[:-1], tokenize=False, add_generation_prompt=True
            )
            full = tokenizer.apply_chat_template(messages, tokenize=False)
            assert full.startswith(prompt)
            prompt_ids = tokenizer(prompt)["input_ids"]
            full_ids = tokenizer(full)["input_ids"]
            assert len(full_ids) > len(prompt_ids)
            assert full_ids[: len(prompt_ids)] == prompt_ids
            # The data layer tokenizes prompt and response separately and concatenates them.
            assert prompt_ids + tokenizer(full[len(prompt) :])["input_ids"] == full_ids
            assert full_ids[-1] == tokenizer.convert_tokens_to_ids(END)


def test_chat_template_can_be_left_out() -> None:
    assert build_tokenizer(["hello"], chat_template=False).chat_template is None


def test_model_shape_and_config() -> None:
    model = build_tiny_model(50, hidden_size=32, num_layers=3, num_heads=2, pad_token_id=0)
    config = model.config
    assert (config.vocab_size, config.hidden_size, config.intermediate_size) == (50, 32, 128)
    assert (config.num_hidden_layers, config.num_attention_heads) == (3, 2)
    assert config.tie_word_embeddings is False
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, None, None)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert {"q_proj", "v_proj"} <= names


def test_model_is_seeded_without_touching_global_rng() -> None:
    state = torch.random.get_rng_state()
    first = build_tiny_model(40, seed=1).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    second = build_tiny_model(40, seed=1).state_dict()
    other = build_tiny_model(40, seed=2).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_forward_with_labels_gives_finite_loss(world: World, texts: list[str]) -> None:
    tokenizer, model = tiny_pair(texts)
    full = tokenizer.apply_chat_template(_messages(world.finetune[0]), tokenize=False)
    batch = tokenizer([full], return_tensors="pt")
    output = model(**batch, labels=batch["input_ids"])
    assert output.logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer))
    assert torch.isfinite(output.loss)


def test_tiny_pair_is_consistent(texts: list[str]) -> None:
    tokenizer, model = tiny_pair(texts, seed=3, hidden_size=32)
    config = model.config
    assert config.vocab_size == len(tokenizer)
    assert config.hidden_size == 32
    assert config.pad_token_id == tokenizer.pad_token_id
    assert config.bos_token_id == tokenizer.bos_token_id
    assert config.eos_token_id == tokenizer.eos_token_id
    end_id = tokenizer.convert_tokens_to_ids(END)
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, end_id]


def test_save_and_load_round_trip(tmp_path, world: World, texts: list[str]) -> None:
    tokenizer, model = tiny_pair(texts)
    tokenizer.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    loaded_model = AutoModelForCausalLM.from_pretrained(tmp_path)

    assert loaded_tokenizer.chat_template == tokenizer.chat_template
    assert loaded_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert loaded_tokenizer.pad_token_id == tokenizer.pad_token_id
    messages = _messages(world.align[0])
    full = loaded_tokenizer.apply_chat_template(messages, tokenize=False)
    assert full == tokenizer.apply_chat_template(messages, tokenize=False)
    ids = loaded_tokenizer([full], return_tensors="pt")["input_ids"]
    assert torch.equal(ids, tokenizer([full], return_tensors="pt")["input_ids"])
    assert loaded_tokenizer.decode(ids[0]) == tokenizer.decode(ids[0])

    assert loaded_model.generation_config.eos_token_id == model.generation_config.eos_token_id
    model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded_model(ids).logits, model(ids).logits)
