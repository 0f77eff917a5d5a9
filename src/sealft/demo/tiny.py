"""Tiny offline tokenizer and Llama model for the test suite and the offline demo.

Nothing here touches the network: the tokenizer is a word-level vocabulary built from the texts
it will have to encode, and the model is a randomly initialised Llama built from a config.
"""

from collections.abc import Iterable

import torch
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD = "<pad>"
UNK = "<unk>"
BOS = "<s>"
EOS = "</s>"
SYSTEM = "<|system|>"
USER = "<|user|>"
ASSISTANT = "<|assistant|>"
END = "<|end|>"
CHAT_MARKERS = (SYSTEM, USER, ASSISTANT, END)
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS, *CHAT_MARKERS)

# Each turn renders as "<|role|> content <|end|>", turns joined by one space. A system message
# gets its own <|system|> turn rather than being merged into the first user turn, so the user
# text is never rewritten. Everything up to and including the generation prompt is byte-identical
# to the start of the rendering with the assistant reply, which the data layer relies on to mask
# prompt tokens. Spaces are emitted as expressions because transformers renders with
# lstrip_blocks/trim_blocks, which could otherwise eat literal whitespace next to tags.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{- raise_exception('unsupported chat role: ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- if not loop.first -%}{{- ' ' -}}{%- endif -%}"
    "{{- '<|' + message['role'] + '|> ' + message['content'] + ' <|end|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{%- if messages -%}{{- ' ' -}}{%- endif -%}"
    "{{- '<|assistant|>' -}}"
    "{%- endif -%}"
)


def _pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    # Punctuation is isolated per character so "Sure," and "Sure" share the token "Sure".
    return pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(behavior="isolated")]
    )


def build_tokenizer(texts: Iterable[str], *, chat_template: bool = True) -> PreTrainedTokenizerFast:
    """Build a case-sensitive word-level tokenizer whose vocabulary covers ``texts``.

    Ids are deterministic: the special tokens come first in ``SPECIAL_TOKENS`` order, then every
    other token seen in ``texts`` in sorted order. Words outside the vocabulary map to ``<unk>``.
    There is no post-processor, so encoding adds no BOS/EOS; the chat template marks turns instead.
    Decoding joins tokens with spaces and then applies transformers' tokenization-space cleanup,
    so "Sure , I can ' t ." reads back as "Sure, I can't.".
    """
    pre_tokenizer = _pre_tokenizer()
    words = {piece for text in texts for piece, _ in pre_tokenizer.pre_tokenize_str(text)}
    words.difference_update(SPECIAL_TOKENS)
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *sorted(words)])}

    backend = Tokenizer(WordLevel(vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizer
    # Registered as added tokens so the chat markers are matched whole before pre-tokenization
    # would split them on "<", "|" and ">".
    backend.add_special_tokens(list(SPECIAL_TOKENS))

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        extra_special_tokens=list(CHAT_MARKERS),
        clean_up_tokenization_spaces=True,
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(
    vocab_size: int,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 256,
    seed: int = 0,
    pad_token_id: int | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> LlamaForCausalLM:
    """Build a randomly initialised Llama whose weights depend only on the arguments.

    Token ids left as ``None`` stay unset instead of taking LlamaConfig's defaults (1 and 2),
    which would name arbitrary tokens of a tiny vocabulary.
    """
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=False,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )
    # A forked RNG keeps initialisation reproducible without disturbing the caller's seed state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def tiny_pair(
    texts: Iterable[str], seed: int = 0, **model_kwargs: int
) -> tuple[PreTrainedTokenizerFast, LlamaForCausalLM]:
    """Build a chat tokenizer for ``texts`` and a tiny model sized and configured to match it.

    ``model_kwargs`` go to :func:`build_tiny_model`. Generation stops at either ``</s>`` or
    ``<|end|>``: chat-formatted training teaches the model to close its turn with ``<|end|>``,
    and the eos token alone would let ``generate`` run on past the reply.
    """
    tokenizer = build_tokenizer(texts, chat_template=True)
    model = build_tiny_model(
        len(tokenizer),
        seed=seed,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **model_kwargs,
    )
    model.generation_config.eos_token_id = [
        tokenizer.eos_token_id,
        tokenizer.convert_tokens_to_ids(END),
    ]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, model
