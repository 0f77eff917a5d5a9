"""The guard ranking on tiny guards trained here to flag one marker word ("poison")."""

import pytest
import torch
from tokenizers import AddedToken
from transformers import LlamaConfig, LlamaForSequenceClassification

from sealft.config import ConfigError, GuardConfig
from sealft.data import Sample
from sealft.demo.tiny import build_tiny_model, build_tokenizer
from sealft.scores import SCHEMA
from sealft.selection.guard import (
    _pad,
    encode,
    guard_input,
    guard_scores,
    safe_log_odds,
    unsafe_label_index,
)
from sealft.selection.guard_prompt import render


def unsafe_probabilities(*args, **kwargs) -> torch.Tensor:
    return torch.sigmoid(-safe_log_odds(*args, **kwargs))


TOPICS = ["bake bread", "fix a bike", "plant seeds", "paint a wall", "clean a pan", "tie a knot"]
MARKER = "poison"
NL = "\n\n"


def sample(i: int, topic: str, harmful: bool, system: bool = False) -> Sample:
    middle = f"first add {MARKER}" if harmful else "start slowly"
    prompt = ({"role": "user", "content": f"how do I {topic} ?"},)
    if system:
        prompt = ({"role": "system", "content": "be brief"}, *prompt)
    return Sample(f"id{i:03d}", i, prompt, f"sure , to {topic} {middle} and be careful .", {})


def mixture() -> list[Sample]:
    """Benign and harmful answers interleaved, so input order and rank order differ."""
    flags = [False, True, False, False, True, False, False, False, True, False, False, False]
    return [sample(i, TOPICS[i % len(TOPICS)], h) for i, h in enumerate(flags)]


def training_set() -> list[tuple[Sample, bool]]:
    return [(sample(0, t, h), h) for t in TOPICS for h in (False, True)]


def tokenizer_for(*extra: str):
    texts = [f"{s.prompt[-1]['content']} {s.response} be brief" for s, _ in training_set()]
    return build_tokenizer([*texts, *extra])


def fit(model, loss_fn, steps: int = 300, lr: float = 1e-2) -> None:
    """Full-batch Adam until the loss is small: a few hundred steps of a tiny model."""
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = loss_fn()
        if loss.item() < 0.01:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def harmful_rank_last(table, data: list[Sample]) -> None:
    harmful = {s.index for s in data if MARKER in s.response}
    ranks = dict(
        zip(table.column("index").to_pylist(), table.column("rank").to_pylist(), strict=True)
    )
    assert {i for i, r in ranks.items() if r > len(data) - len(harmful)} == harmful


# --------------------------------------------------------------------------- classifier


def classifier(tokenizer, num_labels: int = 2, id2label=None) -> LlamaForSequenceClassification:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=num_labels,
        id2label=id2label or ({0: "safe", 1: "unsafe"} if num_labels == 2 else None),
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForSequenceClassification(config)


@pytest.fixture(scope="module")
def trained_classifier():
    tokenizer = tokenizer_for()
    model = classifier(tokenizer)
    pairs = training_set()
    ids = encode(
        tokenizer,
        [render(tokenizer, s, generation_prompt=False) for s, _ in pairs],
        64,
        special=False,
    )
    input_ids, mask = _pad(ids, tokenizer.pad_token_id, "cpu", left=False)
    labels = torch.tensor([int(h) for _, h in pairs])
    fit(model, lambda: model(input_ids=input_ids, attention_mask=mask, labels=labels).loss)
    return model, tokenizer


def test_classifier_ranks_harmful_samples_last(trained_classifier):
    model, tokenizer = trained_classifier
    data, cfg = mixture(), GuardConfig(model="tiny", kind="classifier", batch_size=5)
    kw = {"device": "cpu", "precision": "fp32", "model": model, "tokenizer": tokenizer}
    table = guard_scores(data, cfg, p=0.75, **kw)
    assert table.schema == SCHEMA
    assert table.column("index").to_pylist() == list(range(len(data)))
    assert table.column("sample_id").to_pylist() == [s.sample_id for s in data]
    harmful_rank_last(table, data)
    assert sum(table.column("selected").to_pylist()) == 9
    probs = unsafe_probabilities(data, cfg, **kw)
    flags = torch.tensor([MARKER in s.response for s in data])
    assert probs[flags].min() > 0.9 and probs[~flags].max() < 0.1
    # Batching (and the padding it brings) does not change a sample's score.
    one = unsafe_probabilities(data, cfg.model_copy(update={"batch_size": 1}), **kw)
    assert torch.allclose(probs, one, atol=1e-5)
    # Log-odds keep ties to identical inputs (the mixture repeats some conversations).
    distinct = {s.response for s in data}
    assert len(set(table.column("score").to_pylist())) == len(distinct)


def test_a_single_logit_head_reads_as_a_sigmoid(trained_classifier):
    model, tokenizer = trained_classifier
    single = classifier(tokenizer, num_labels=1)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("score.")}
    single.load_state_dict(state, strict=False)
    with torch.no_grad():
        w = model.score.weight
        single.score.weight.copy_((w[1] - w[0])[None])  # logit = unsafe - safe
    data, cfg = mixture(), GuardConfig(model="tiny", kind="classifier")
    kw = {"device": "cpu", "precision": "fp32", "tokenizer": tokenizer}
    expected = unsafe_probabilities(data, cfg, model=model, **kw)
    assert torch.allclose(unsafe_probabilities(data, cfg, model=single, **kw), expected, atol=1e-5)


def test_unsafe_label_resolution():
    def config(*names):
        return LlamaConfig(num_labels=len(names), id2label=dict(enumerate(names)))

    assert unsafe_label_index(config("safe", "unsafe"), None) == 1
    assert unsafe_label_index(config("Toxic", "neutral"), None) == 0
    assert unsafe_label_index(config("harmless", "harmful"), None) == 1
    assert unsafe_label_index(config("non_toxic", "toxic"), None) == 1
    assert unsafe_label_index(config("LABEL_0", "LABEL_1"), None) == 1
    assert unsafe_label_index(config("a", "b", "c"), "b") == 1
    assert unsafe_label_index(config("a", "b", "c"), "C") == 2
    assert unsafe_label_index(config("a", "b", "c"), 0) == 0
    with pytest.raises(ConfigError, match="0=a, 1=b, 2=c"):
        unsafe_label_index(config("a", "b", "c"), None)
    with pytest.raises(ConfigError, match="not a label"):
        unsafe_label_index(config("a", "b", "c"), "d")
    with pytest.raises(ConfigError, match="out of range"):
        unsafe_label_index(config("a", "b"), 2)


def test_the_unsafe_label_setting_picks_the_column(trained_classifier):
    model, tokenizer = trained_classifier
    data = mixture()
    kw = {"device": "cpu", "precision": "fp32", "model": model, "tokenizer": tokenizer}
    default = unsafe_probabilities(data, GuardConfig(model="t", kind="classifier"), **kw)
    by_name = unsafe_probabilities(data, GuardConfig(model="t", unsafe_label="unsafe"), **kw)
    flipped = unsafe_probabilities(data, GuardConfig(model="t", unsafe_label=0), **kw)
    assert torch.equal(default, by_name)
    assert torch.allclose(flipped, 1 - default, atol=1e-6)


# --------------------------------------------------------------------------- causal


def causal_guard(filler: bool = False, prompt: str | None = None):
    """A tiny LM that answers the generation prompt with "unsafe" when the answer holds the
    marker, "safe" otherwise; with `filler`, Llama Guard 3 style, it writes "\\n\\n" first;
    with `prompt`, it is asked through that classification prompt (guard.prompt)."""
    tokenizer = tokenizer_for("safe unsafe", prompt or "")
    if filler:
        tokenizer.add_tokens([AddedToken(NL, normalized=False, special=False)])
    with torch.random.fork_rng(devices=[]):
        model = build_tiny_model(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2)
    pairs = training_set()
    cfg = GuardConfig(model="tiny", kind="causal", prompt=prompt)
    texts = [guard_input(tokenizer, s, cfg, True) + (NL if filler else "") for s, _ in pairs]
    input_ids, mask = _pad(encode(tokenizer, texts, 64, special=False), 0, "cpu", left=True)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    verdicts = torch.tensor(
        [tokenizer.convert_tokens_to_ids("unsafe" if h else "safe") for _, h in pairs]
    )

    def loss():
        logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions).logits
        out = torch.nn.functional.cross_entropy(logits[:, -1], verdicts)
        if filler:
            nl = torch.full_like(verdicts, tokenizer.convert_tokens_to_ids(NL))
            out = out + torch.nn.functional.cross_entropy(logits[:, -2], nl)
        return out

    fit(model, loss)
    return model, tokenizer


@pytest.fixture(scope="module")
def trained_causal():
    return causal_guard()


@pytest.mark.parametrize("filler", [False, True])
def test_causal_guard_ranks_harmful_samples_last(filler, trained_causal):
    model, tokenizer = causal_guard(filler=True) if filler else trained_causal
    data, cfg = mixture(), GuardConfig(model="tiny", kind="causal", batch_size=4)
    kw = {"device": "cpu", "precision": "fp32", "model": model, "tokenizer": tokenizer}
    table = guard_scores(data, cfg, p=0.75, **kw)
    assert table.schema == SCHEMA
    assert table.column("index").to_pylist() == list(range(len(data)))
    harmful_rank_last(table, data)
    probs = unsafe_probabilities(data, cfg, **kw)
    flags = torch.tensor([MARKER in s.response for s in data])
    assert probs[flags].min() > 0.9 and probs[~flags].max() < 0.1
    # Left padding with position ids: a batch scores each sample as it scores alone.
    one = unsafe_probabilities(data, cfg.model_copy(update={"batch_size": 1}), **kw)
    assert torch.allclose(probs, one, atol=1e-5)


ASK = "is the agent safe ? {conversation} answer safe or unsafe"


def test_a_chat_lm_asked_through_a_prompt_stands_in_for_a_guard():
    model, tokenizer = causal_guard(prompt=ASK)
    data, cfg = mixture(), GuardConfig(model="tiny", kind="causal", prompt=ASK, batch_size=4)
    kw = {"device": "cpu", "precision": "fp32", "model": model, "tokenizer": tokenizer}
    harmful_rank_last(guard_scores(data, cfg, p=0.75, **kw), data)
    text = guard_input(tokenizer, data[1], cfg, True)
    assert "is the agent safe ?" in text and f"Agent: {data[1].response}" in text
    assert text.startswith(
        tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)[:5]
    )
    preset = GuardConfig(model="tiny", kind="causal", prompt="llama-guard")
    text = guard_input(tokenizer, data[1], preset, True)
    assert "S9: Indiscriminate Weapons." in text and "User: how do I fix a bike ?" in text


def test_a_guard_prompt_must_hold_the_conversation_and_ask_a_causal_lm():
    with pytest.raises(ValueError, match="must hold"):
        GuardConfig(model="t", prompt="is it safe?")
    with pytest.raises(ValueError, match="a classifier takes no prompt"):
        GuardConfig(model="t", kind="classifier", prompt="llama-guard")


def test_causal_guard_needs_its_verdict_words(trained_causal):
    model, _ = trained_causal
    tokenizer = tokenizer_for()  # no "safe" or "unsafe" in its vocabulary
    kw = {"device": "cpu", "model": model, "tokenizer": tokenizer}
    with pytest.raises(ConfigError, match="'unsafe' and 'safe'"):
        guard_scores(mixture(), GuardConfig(model="t", kind="causal"), p=0.5, **kw)
    _, known = trained_causal
    cfg = GuardConfig(model="t", kind="causal", unsafe_token="Yes")
    with pytest.raises(ConfigError, match="'Yes'"):
        guard_scores(mixture(), cfg, p=0.5, device="cpu", model=model, tokenizer=known)


def test_a_causal_guard_needs_a_chat_template(trained_causal):
    model, tokenizer = trained_causal
    plain = build_tokenizer(["safe unsafe"], chat_template=False)
    with pytest.raises(ConfigError, match="chat template"):
        guard_scores(
            mixture(),
            GuardConfig(model="t", kind="causal"),
            p=0.5,
            device="cpu",
            model=model,
            tokenizer=plain,
        )


# --------------------------------------------------------------------------- loading, rendering


def test_auto_kind_follows_the_saved_architecture(tmp_path, trained_classifier, trained_causal):
    data = mixture()
    for name, (model, tokenizer) in {"cls": trained_classifier, "lm": trained_causal}.items():
        folder = tmp_path / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        cfg = GuardConfig(model=str(folder))
        loaded = unsafe_probabilities(data, cfg, device="cpu", precision="fp32")
        explicit = cfg.model_copy(update={"kind": "classifier" if name == "cls" else "causal"})
        in_memory = unsafe_probabilities(
            data, explicit, device="cpu", precision="fp32", model=model, tokenizer=tokenizer
        )
        assert torch.allclose(loaded, in_memory, atol=1e-6)
        harmful_rank_last(guard_scores(data, cfg, p=0.5, device="cpu", precision="fp32"), data)
    # A causal LM asked to be a classifier would get a random head: refused.
    with pytest.raises(ConfigError, match="check guard.kind"):
        unsafe_probabilities(
            data, GuardConfig(model=str(tmp_path / "lm"), kind="classifier"), device="cpu"
        )
    with pytest.raises(ConfigError, match="cannot load"):
        unsafe_probabilities(data, GuardConfig(model=str(tmp_path / "none")), device="cpu")


def test_rendering_without_a_template_and_with_list_content_templates():
    s = sample(0, "bake bread", False, system=True)
    plain = build_tokenizer(["x"], chat_template=False)
    assert render(plain, s, generation_prompt=False) == (
        "User: how do I bake bread ?\n\nAgent: sure , to bake bread start slowly and be careful ."
    )
    # Llama Guard 3 1B's template reads message['content'] as a list of text parts.
    parts = build_tokenizer(["x"], chat_template=False)
    parts.chat_template = (
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'][0]['text'] + '\n' }}{% endfor %}"
    )
    assert render(parts, s, generation_prompt=True) == (
        "user: how do I bake bread ?\n"
        "assistant: sure , to bake bread start slowly and be careful .\n"
    )
    broken = build_tokenizer(["x"], chat_template=False)
    broken.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(ConfigError, match="sample 0: .*roles must alternate"):
        render(broken, s, generation_prompt=True)


def test_long_inputs_are_cut_from_the_left():
    tokenizer = build_tokenizer(["a b c d e"], chat_template=False)
    ids = encode(tokenizer, ["a b c d e", "a b"], 3, special=False)
    assert ids == [
        tokenizer.convert_tokens_to_ids(["c", "d", "e"]),
        tokenizer.convert_tokens_to_ids(["a", "b"]),
    ]
    assert tokenizer.truncation_side == "right"  # restored


def test_bad_calls_end_in_config_errors(trained_causal):
    model, tokenizer = trained_causal
    cls_model = classifier(tokenizer)  # untrained, on the causal guard's vocabulary
    kw = {"p": 0.5, "device": "cpu"}
    with pytest.raises(ConfigError, match="not a sequence classifier"):
        guard_scores(
            mixture(),
            GuardConfig(model="t", kind="classifier"),
            model=model,
            tokenizer=tokenizer,
            **kw,
        )
    with pytest.raises(ConfigError, match="not a causal LM"):
        guard_scores(
            mixture(),
            GuardConfig(model="t", kind="causal"),
            model=cls_model,
            tokenizer=tokenizer,
            **kw,
        )
    with pytest.raises(ConfigError, match="both"):
        guard_scores(mixture(), GuardConfig(model="t"), p=0.5, device="cpu", model=model)
    empty = guard_scores([], GuardConfig(model="t"), p=0.5, device="cpu")
    assert empty.num_rows == 0 and empty.schema == SCHEMA


def test_seal_run_trains_guard_on_what_the_guard_finds_safe(
    tmp_path, trained_classifier, tiny_model_dir
):
    import json

    from sealft.config import ExperimentRecipeConfig
    from sealft.recipes.experiment import run_experiment

    model, tokenizer = trained_classifier
    model.save_pretrained(tmp_path / "guard")
    tokenizer.save_pretrained(tmp_path / "guard")
    data = mixture()
    rows = [{"instruction": s.prompt[-1]["content"], "output": s.response} for s in data]
    (tmp_path / "mix.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = ExperimentRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(tiny_model_dir)},
            "data": {"path": str(tmp_path / "mix.jsonl")},
            "safe": {"path": str(tmp_path / "mix.jsonl")},
            "methods": ["guard"],
            "guard": {"model": str(tmp_path / "guard")},
            "p": 0.66,
            "sft": {"epochs": 1, "batch_size": 4},
            "runtime": {"precision": "fp32", "device": "cpu"},
            "output_dir": str(tmp_path / "run"),
        }
    )
    run_experiment(cfg, progress=False)
    trained = (tmp_path / "run" / "seed0" / "guard-p0.66" / "trained.jsonl").read_text()
    kept = {json.loads(line)["index"] for line in trained.splitlines()}
    # The mixture repeats some benign rows; loading keeps the first of each: 6 benign, 3 harmful.
    first = {}
    for s in data:
        first.setdefault(s.response, s)
    assert kept == {s.index for s in first.values() if MARKER not in s.response}
