from conftest import alpaca_rows

from sealft.config import GenerationConfig
from sealft.data import user_prompt_text as prompt_text
from sealft.eval.generation import generate
from sealft.model.load import load_model_and_tokenizer


def test_batched_left_padded_answers_match_one_at_a_time(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    prompts = [r["instruction"] for r in alpaca_rows(6)] + ["task", "task number 3 : say"]
    batched = generate(model, tok, prompts, GenerationConfig(max_new_tokens=5, batch_size=8))
    single = generate(model, tok, prompts, GenerationConfig(max_new_tokens=5, batch_size=1))
    assert batched == single and len(batched) == len(prompts)
    assert tok.padding_side == "right"  # restored for training


def test_sampling_is_seeded_and_differs_from_greedy(tiny_model_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_dir))
    prompts = [r["instruction"] for r in alpaca_rows(4)]
    paper = GenerationConfig(max_new_tokens=6, sampling=True, seed=3)
    a, b = generate(model, tok, prompts, paper), generate(model, tok, prompts, paper)
    assert a == b
    assert a != generate(model, tok, prompts, GenerationConfig(max_new_tokens=6))
    assert (paper.temperature, paper.top_p, paper.repetition_penalty) == (1.0, 0.9, 1.2)


def test_prompts_render_as_in_training(tiny_model_dir):
    _, tok = load_model_and_tokenizer(str(tiny_model_dir))
    assert prompt_text(tok, "hi") == "<|user|> hi <|end|> <|assistant|>"
    assert prompt_text(tok, "hi", "plain") == "Human: hi\nAssistant: "
