"""A sample whose loss is NaN: the run stops naming it, or leaves it out, and never lets it
into the logits or the model.

The NaN is real, not mocked: the embedding of a word only one sample uses is set to NaN,
so that sample's forward pass, loss and gradient all go NaN, as an overflow would make them.
"""

import json
import math

import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.cli import main
from sealft.config import FinetuneRecipeConfig
from sealft.data import load_samples
from sealft.recipes.finetune import run_finetune
from sealft.selection.bilevel import NonFiniteLossError
from sealft.selection.checkpoint import CHECKPOINT, STATE
from sealft.selection.schedule import fine_tune_batches

POISONED = 13  # alpaca_rows(i) is the only sample with the word str(i)
N, BATCH = 16, 4


def _poison(model, tokenizer) -> None:
    token = tokenizer.convert_tokens_to_ids(str(POISONED))
    assert token != tokenizer.unk_token_id
    with torch.no_grad():
        model.get_input_embeddings().weight[token] = float("nan")


@pytest.fixture(scope="module")
def poisoned_model_dir(tiny_model_dir, tmp_path_factory):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    _poison(model, tokenizer)
    folder = tmp_path_factory.mktemp("poisoned-model")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def files(tmp_path):
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(N))
    return data, write_jsonl(tmp_path / "safe.jsonl", safe_rows(4))


def _poisoned_id(data) -> str:
    return load_samples(data).samples[POISONED].sample_id


def _poisoned_step(data, epoch: int) -> int:
    """The step of `epoch` whose batch holds the poisoned sample (samples train in ID order)."""
    ids = sorted(s.sample_id for s in load_samples(data).samples)
    position = ids.index(_poisoned_id(data))
    batches = fine_tune_batches(N, BATCH, 0, epoch)
    return next(step for step, b in enumerate(batches) if position in b.tolist())


def _select(model_dir, data, safe, out, *extra) -> int:
    return main(
        [
            "select",
            "--model",
            str(model_dir),
            "--data",
            str(data),
            "--safe",
            str(safe),
            "--output-dir",
            str(out),
            "lora.r=2",
            "lora.alpha=4",
            "tokenize.max_length=48",
            f"selector_train.batch_size={BATCH}",
            "selector_train.checkpoint_every=1",
            "runtime.precision=fp32",
            "runtime.device=cpu",
            "selector.epochs=2",
            "selector.warmup_epochs=0",
            "selector.gamma_step=0.5",
            "--no-progress",
            *extra,
        ]
    )


@pytest.mark.parametrize("algorithm", ["1", "2"])
def test_stop_names_epoch_step_and_sample_and_keeps_the_last_good_checkpoint(
    tmp_path, poisoned_model_dir, files, capsys, algorithm
):
    out = tmp_path / "run"
    assert _select(poisoned_model_dir, *files, out, "--algorithm", algorithm) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("seal:")]
    step = _poisoned_step(files[0], 0)
    assert step > 0  # so that a mid-epoch checkpoint came before it
    assert len(err) == 1 and err[0].startswith("seal: error: loss not finite at selector ")
    assert f"epoch 0, step {step} " in err[0] and _poisoned_id(files[0]) in err[0]
    assert "on_nonfinite=skip" in err[0]
    assert not (out / "scores.parquet").exists()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == step
    state = json.loads((out / CHECKPOINT / STATE).read_text())
    assert (state["epoch"], state["step"]) == (0, step)
    assert not list(out.glob(f"{CHECKPOINT}.*"))


def test_skip_leaves_the_sample_out_of_every_update(tmp_path, poisoned_model_dir, files, capsys):
    out = tmp_path / "run"
    extra = ["selector_train.on_nonfinite=skip", "selector.activation=sigmoid"]
    # The raw logits, which this test reads: unsmoothed, no prompt probe.
    extra += ["selector.smoothing=none", "selector.prompt_probe.weight=0"]
    assert _select(poisoned_model_dir, *files, out, *extra) == 0
    bad = _poisoned_id(files[0])
    warnings = [x for x in capsys.readouterr().err.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 2 and all(bad in w and "left out" in w for w in warnings)
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    skipped = [(r["epoch"], r["step"]) for r in metrics if r["skipped_samples"]]
    assert skipped == [(e, _poisoned_step(files[0], e)) for e in (0, 1)]
    assert all(r["skipped_samples"] <= 1 and r["skipped_safe_samples"] == 0 for r in metrics)
    assert all(r["finetune_loss"] is not None for r in metrics)  # no NaN (null) got through
    scores = {r["sample_id"]: r["score"] for r in pq.read_table(out / "scores.parquet").to_pylist()}
    # Under 2·sigmoid a logit moves only with its own batch's values: this one never did.
    assert scores.pop(bad) == 0.0
    assert all(torch.isfinite(torch.tensor(list(scores.values()))))
    assert len(set(scores.values())) > 1


def _finetune(tmp_path, model_dir, data, policy: str):
    cfg = FinetuneRecipeConfig.model_validate(
        {
            "model": {"name_or_path": str(model_dir)},
            "data": {"path": str(data)},
            "tokenize": {"max_length": 64},
            "lora": {"r": 2, "alpha": 4},
            "sft": {"epochs": 1, "batch_size": 4, "lr": 1e-2, "on_nonfinite": policy},
            "runtime": {"precision": "fp32", "device": "cpu"},
            "output_dir": str(tmp_path / policy),
        }
    )
    return run_finetune(cfg, progress=False)


def test_finetune_stops_naming_the_sample(tmp_path, poisoned_model_dir, files):
    with pytest.raises(NonFiniteLossError, match="loss not finite at fine-tuning step") as e:
        _finetune(tmp_path, poisoned_model_dir, files[0], "stop")
    assert _poisoned_id(files[0]) in str(e.value)
    assert not (tmp_path / "stop" / "result.json").exists()


def test_finetune_skip_trains_on_the_rest(tmp_path, poisoned_model_dir, files):
    result = _finetune(tmp_path, poisoned_model_dir, files[0], "skip")
    adapter = {n: p for n, p in result.model.named_parameters() if "lora_" in n}
    assert all(torch.isfinite(p).all() for p in adapter.values())
    assert any(p.abs().sum() > 0 for n, p in adapter.items() if "lora_B" in n)
    assert math.isfinite(result.summary["train_loss"])
