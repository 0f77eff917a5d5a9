import torch
from conftest import alpaca_rows, write_jsonl

from sealft.config import GenerationConfig
from sealft.data import encode, load_samples, prompt_ids
from sealft.data import user_prompt_text as prompt_text
from sealft.demo.tiny import tiny_pair
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


class _Recorder(torch.nn.Module):
    """Stands in for a model: records what generate is asked to continue."""

    def __init__(self, eos: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.eos, self.prompts = eos, []

    def generate(self, input_ids, attention_mask, **kwargs):
        for ids, mask in zip(input_ids, attention_mask, strict=True):
            self.prompts.append(ids[mask.bool()].tolist())
        return torch.cat([input_ids, torch.full((len(input_ids), 1), self.eos)], dim=1)


def _bos_tokenizer():
    from tokenizers.processors import TemplateProcessing

    texts = [r[k] for r in alpaca_rows(4) for k in ("instruction", "output")]
    tok, _ = tiny_pair(texts)
    tok.chat_template = None
    tok._tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)]
    )
    assert tok("task")["input_ids"][0] == tok.bos_token_id
    return tok


def test_generation_continues_exactly_the_prompt_ids_training_saw(tmp_path):
    """With the plain template and a tokenizer that adds BOS, the prompt ids of training
    (encode) and of generation are the same, BOS included."""
    tok = _bos_tokenizer()
    rows = alpaca_rows(4)
    samples = load_samples(write_jsonl(tmp_path / "rows.jsonl", rows)).samples
    data = encode(samples, tok, max_length=64, template="plain")
    trained = [
        [t for t, lab in zip(ids, labels, strict=True) if lab == -100]
        for ids, labels in zip(data.input_ids, data.labels, strict=True)
    ]
    model = _Recorder(tok.eos_token_id)
    prompts = [s.prompt[-1]["content"] for s in data.samples]
    generate(
        model, tok, prompts, GenerationConfig(max_new_tokens=1, batch_size=4), template="plain"
    )
    by_length = sorted(trained, key=len, reverse=True)
    assert sorted(model.prompts, key=len, reverse=True) == by_length
    assert all(p[0] == tok.bos_token_id for p in model.prompts)
    assert prompt_ids(tok, prompt_text(tok, prompts[0], "plain"), "plain") == trained[0]
