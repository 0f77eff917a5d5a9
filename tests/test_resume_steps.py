"""Resuming within an epoch: the checkpoint holds every piece of state, is replaced
atomically, and a run killed mid-epoch (SIGKILL, no chance to clean up) resumes to exactly
the scores of a run never stopped."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft.cli import main
from sealft.config import LoraSettings, RuntimeConfig, SelectorConfig, SelectorTrainConfig
from sealft.data import encode, load_samples, pad_id
from sealft.model.lora import add_lora
from sealft.selection import checkpoint
from sealft.selection.bilevel import BilevelTrainer, adapter_names
from sealft.selection.checkpoint import find_checkpoint
from sealft.selection.selector import FeatureSelector, read_selector_file


class Stop(Exception):
    pass


def _trainer(tiny_model_dir, tmp_path, *, algorithm, lora=True, features=False, run_dir=None):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ft = encode(
        load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(12))).samples,
        tok,
        max_length=48,
    )
    sf = encode(
        load_samples(write_jsonl(tmp_path / "sf.jsonl", safe_rows(5))).samples, tok, max_length=48
    )
    if lora:
        model = add_lora(model, LoraSettings(r=2, alpha=4), adapter_names(algorithm))
    selector = None
    if features:
        x = torch.randn(len(ft), 3, generator=torch.Generator().manual_seed(1))
        ids = [s.sample_id for s in ft.samples]
        selector = FeatureSelector(ids, x, residual=True)
    return BilevelTrainer(
        model,
        ft,
        sf,
        selector_cfg=SelectorConfig(
            algorithm=algorithm, epochs=2, gamma_step=0.5, warmup_epochs=0, optimizer="adam"
        ),
        train_cfg=SelectorTrainConfig(lr=1e-2, batch_size=2, checkpoint_every=4),
        runtime=RuntimeConfig(precision="fp32"),
        pad=pad_id(tok),
        seed=0,
        lora=lora,
        device=torch.device("cpu"),
        progress=False,
        run_dir=run_dir,
        selector=selector,
    )


def _snapshot(trainer) -> tuple[dict, dict]:
    tensors = {}
    state = trainer._state(tensors)
    return json.loads(json.dumps(state)), {k: v.clone() for k, v in tensors.items()}


@pytest.mark.parametrize(
    "setup",
    [
        {"algorithm": 1},
        {"algorithm": 2},
        {"algorithm": 1, "lora": False},
        {"algorithm": 2, "features": True},
    ],
    ids=["alg1-lora", "alg2-lora", "alg1-full-twin", "alg2-features"],
)
def test_a_mid_epoch_checkpoint_round_trips_every_state(tiny_model_dir, tmp_path, setup):
    torch.manual_seed(0)
    whole = _trainer(tiny_model_dir, tmp_path, **setup).train().logits.detach().clone()

    torch.manual_seed(0)
    first = _trainer(tiny_model_dir, tmp_path, run_dir=tmp_path / "run", **setup)
    saved = []
    real_save = first.save_checkpoint
    first.save_checkpoint = lambda folder: saved.append(_snapshot(first)) or real_save(folder)

    def stop_in_epoch_two(record):
        if (record["epoch"], record["step"]) == (1, 3):
            raise Stop

    with pytest.raises(Stop):
        first.train(log=stop_in_epoch_two)
    # 6 steps an epoch, a checkpoint every 4: the last one was after epoch 1's step 1.
    state, tensors = saved[-1]
    assert (state["epoch"], state["step"]) == (1, 2)
    two = setup["algorithm"] == 1
    expected = {"selector", "selector_opt", "upper_model", "upper_opt", "rng"}
    expected |= {"lower_opt"} if two else set()
    expected |= {"lower_model"} if two and not setup.get("lora", True) else set()
    assert {k.split("/")[0] for k in tensors} == expected
    torch.rand(5), random.random(), np.random.rand()  # state a resumed run must not see

    second = _trainer(tiny_model_dir, tmp_path, **setup)
    second.load_checkpoint(find_checkpoint(tmp_path / "run" / checkpoint.CHECKPOINT))
    state2, tensors2 = _snapshot(second)
    assert state2 == state
    assert tensors2.keys() == tensors.keys()
    for k, v in tensors.items():
        assert torch.equal(tensors2[k], v), k
    resumed = second.train().logits.detach()
    assert torch.equal(resumed, whole)


def test_a_crash_between_the_renames_resumes_from_the_previous_checkpoint(tiny_model_dir, tmp_path):
    t = _trainer(tiny_model_dir, tmp_path, algorithm=2)
    folder = tmp_path / "checkpoint"
    t.save_checkpoint(folder)
    t.steps_done = 3
    t.save_checkpoint(folder)
    assert find_checkpoint(folder) == folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("check")) == [
        "checkpoint"
    ]
    # Killed after moving the previous checkpoint aside, before renaming the new one in.
    folder.rename(tmp_path / "checkpoint.old")
    (tmp_path / "checkpoint.tmp").mkdir()
    assert find_checkpoint(folder) == tmp_path / "checkpoint.old"
    t.steps_done = 5
    t.save_checkpoint(folder)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("check")) == [
        "checkpoint"
    ]
    t.load_checkpoint(find_checkpoint(folder))
    assert t.steps_done == 5


# --------------------------------------------------------------------------- seal select, killed

ARGS = [
    "lora.r=2",
    "lora.alpha=4",
    "tokenize.max_length=48",
    "selector_train.batch_size=1",
    "selector_train.checkpoint_every=3",
    "runtime.precision=fp32",
    "runtime.device=cpu",
    "selector_train.lr=0.01",
    "selector.epochs=2",
    "selector.gamma_step=0.5",
    "--no-progress",
    "-q",
]


def _argv(tiny_model_dir, data, safe, out, extra) -> list[str]:
    return [
        "select",
        "--model",
        str(tiny_model_dir),
        "--data",
        str(data),
        "--safe",
        str(safe),
        "--output-dir",
        str(out),
        *ARGS,
        *extra,
    ]


def _lines(path) -> int:
    try:
        return path.read_text().count("\n")
    except FileNotFoundError:
        return 0


def _checkpoint_position(folder) -> tuple[int, int] | None:
    try:
        state = json.loads((folder / checkpoint.STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # not there yet, or being replaced this very moment
    return state["epoch"], state["step"]


def _kill_mid_epoch(argv: list[str], out, steps_per_epoch: int) -> None:
    """Run `seal select` and SIGKILL it once a mid-epoch checkpoint of epoch 0 is on disk
    and at least one step has been logged after it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    log = out.with_name(out.name + ".stderr")
    with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(
            [sys.executable, "-m", "sealft.cli", *argv],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            at = _checkpoint_position(out / checkpoint.CHECKPOINT)
            lines = _lines(out / "metrics.jsonl")
            if at is not None and at[0] == 0 and at[1] > 0 and lines > at[1]:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stderr = log.read_text()
    assert proc.returncode == -signal.SIGKILL, stderr
    assert not (out / "scores.parquet").exists()
    epoch, step = _checkpoint_position(find_checkpoint(out / checkpoint.CHECKPOINT))
    assert 0 < step < steps_per_epoch and epoch in (0, 1), (epoch, step)


@pytest.mark.parametrize(
    "extra",
    [["--algorithm", "1"], ["--algorithm", "2"], ["--algorithm", "2", "selector.kind=features"]],
    ids=["alg1", "alg2", "alg2-features"],
)
def test_select_killed_mid_epoch_resumes_to_identical_scores(tmp_path, tiny_model_dir, extra):
    n = 20
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(n))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(6))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main(_argv(tiny_model_dir, data, safe, whole, extra)) == 0

    _kill_mid_epoch(_argv(tiny_model_dir, data, safe, killed, extra), killed, n)
    assert main(_argv(tiny_model_dir, data, safe, killed, extra)) == 0

    assert pq.read_table(killed / "scores.parquet").equals(pq.read_table(whole / "scores.parquet"))
    for name in ("metrics.jsonl", "selected.jsonl"):
        assert (killed / name).read_bytes() == (whole / name).read_bytes(), name
    # (The file's bytes may not be: safetensors orders its metadata by a hash.)
    saved = [read_selector_file(run / "selector.safetensors") for run in (killed, whole)]
    assert saved[0][0] == saved[1][0]
    assert saved[0][1].keys() == saved[1][1].keys()
    assert all(torch.equal(saved[0][1][k], saved[1][1][k]) for k in saved[0][1])
    assert not [p.name for p in killed.iterdir() if p.name.startswith("checkpoint")]


# --------------------------------------------------------------------------- seal finetune


def test_finetune_resumes_mid_epoch_loading_nothing_unsafely(tmp_path, tiny_model_dir, monkeypatch):
    from sealft.config import FinetuneRecipeConfig
    from sealft.recipes.finetune import run_finetune

    data = write_jsonl(tmp_path / "data.jsonl", alpaca_rows(16))

    def run(out):
        cfg = FinetuneRecipeConfig.model_validate(
            {
                "model": {"name_or_path": str(tiny_model_dir)},
                "data": {"path": str(data)},
                "tokenize": {"max_length": 64},
                "lora": {"r": 2, "alpha": 4},
                "sft": {"epochs": 2, "batch_size": 4, "lr": 1e-2, "save_steps": 3},
                "runtime": {"precision": "fp32", "device": "cpu"},
                "output_dir": str(out),
            }
        )
        result = run_finetune(cfg, progress=False)
        return {n: p.detach().clone() for n, p in result.model.named_parameters() if "lora_" in n}

    whole = run(tmp_path / "whole")
    stopped = tmp_path / "stopped"
    run(stopped)
    # Stopped after step 6, in the middle of the second epoch (4 steps an epoch).
    shutil.rmtree(stopped / "checkpoints" / "checkpoint-8")
    shutil.rmtree(stopped / "adapter")
    (stopped / "result.json").unlink()
    loads = []
    real_load = torch.load

    def spy(*args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    resumed = run(stopped)
    # transformers reads the optimiser, scheduler and RNG states, all with weights_only.
    assert loads and all(w is True for w in loads)
    assert resumed.keys() == whole.keys()
    for name, value in whole.items():
        assert torch.equal(resumed[name], value), name
