"""Two processes on the CPU (gloo) against one: `accelerate launch` of the real command
line, and a launched worker (this file, run as a script) for what the command line does
not reach directly: Algorithm 2 with a feature selector on uneven shares (a batch of one
sample leaves one process nothing to do) and a checkpoint resumed under another number
of processes.

The processes sum gradients and the losses come back in another order of float32
additions, so two processes agree with one to rounding, not bit for bit. How far rounding
carries through a training run depends on the host and the libraries (Adam and the
standardised score amplify it), so each comparison's tolerance is measured beside it: a
one-process *twin* with another micro-batch size takes the same sums in another order,
and two processes must land within a stated multiple of the twin's distance
(tests/tolerance.py). Where the ranking is the contract, every pair of samples further
apart than that tolerance keeps its order.

Measured on one AMD EPYC host (transformers 5.25, fp32, Algorithm 1): the learned logits
of two processes and of the twin each lay 3.0e-6 and 3.2e-6 from one process's (on logits
of spread 0.07), the composed scores 3.7e-5 and 3.9e-5 (on scores of spread 1.8): the
blend and the prompt probe are computed identically on every process, and the composed
score, being standardised, carries the logits' rounding relative to their spread.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import alpaca_rows, safe_rows, write_jsonl
from safetensors.torch import load_file, save_file
from tolerance import FLOOR_UNITS, TWIN_FACTOR, U32, assert_same_ranking, assert_within_twin
from transformers import AutoModelForCausalLM, AutoTokenizer

from sealft import distributed
from sealft.cli import main
from sealft.config import (
    ConfigError,
    ExperimentRecipeConfig,
    LoraSettings,
    RuntimeConfig,
    SelectorConfig,
    SelectorTrainConfig,
    SFTConfig,
)
from sealft.data import encode, load_samples, pad_id
from sealft.model.lora import add_lora
from sealft.recipes.experiment import run_experiment
from sealft.runs import prepare_run_dir
from sealft.selection.bilevel import BilevelTrainer, adapter_names
from sealft.selection.checkpoint import CHECKPOINT, find_checkpoint
from sealft.sft import per_process_batches

ROOT = Path(__file__).resolve().parents[1]
CPU_GLOO = ROOT / "configs" / "accelerate" / "cpu-gloo.yaml"
COMMON = [
    "lora.r=2",
    "lora.alpha=4",
    "tokenize.max_length=48",
    "runtime.precision=fp32",
    "runtime.device=cpu",
    "--no-progress",
    "-q",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], log: Path) -> subprocess.Popen:
    """Two processes under `accelerate launch` with the shipped CPU config."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    command += [str(CPU_GLOO), "--main_process_port", str(_free_port()), *args]
    # A file, not a pipe: a full pipe would stall the run.
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=out)


def _finish(proc: subprocess.Popen, log: Path) -> None:
    proc.wait(timeout=300)
    assert proc.returncode == 0, log.read_text()[-4000:]


def _scores(run: Path) -> torch.Tensor:
    return torch.tensor(pq.read_table(run / "scores.parquet").column("score").to_pylist())


def _learned(run: Path) -> torch.Tensor:
    """The bilevel logits before the score is composed from them."""
    return load_file(str(run / "selector.safetensors"))["logits"]


def _assert_same_scores(one: Path, two: Path, twin: Path, learned: bool = True) -> None:
    """The composed scores (and the learned logits they come from, for a logits selector)
    within rounding, and the ranking kept."""
    assert _scores(one).abs().max() > 0.1  # the selector did learn something to compare
    for read in (_learned, _scores) if learned else (_scores,):
        a, b, t = read(one), read(two), read(twin)
        atol = assert_within_twin(b, a, t)
        assert_same_ranking(b, a, margin=atol)
    if learned:
        # The blend and the probe are computed alike on every process and standardise the
        # learned logits (test_the_default_score_sees_the_learned_logits_relative_to_their_
        # spread): the scores of two processes lie as far apart, relative to their spread,
        # as the learned logits do relative to theirs, within the same factor as the twin.
        def apart(read) -> float:
            a, b = read(one), read(two)
            return ((b - a).abs().max() / a.std()).item()

        assert apart(_scores) <= TWIN_FACTOR * apart(_learned) + FLOOR_UNITS * U32
    lines = [(run / "metrics.jsonl").read_text().count("\n") for run in (one, two, twin)]
    assert lines[0] == lines[1] == lines[2] > 0


def _assert_same_adapter(one: Path, two: Path, twin: Path) -> None:
    a, b, t = (
        load_file(str(run / "adapter" / "adapter_model.safetensors")) for run in (one, two, twin)
    )
    assert a.keys() == b.keys() == t.keys() and a
    for key in a:
        assert_within_twin(b[key], a[key], t[key])


def _sft_losses(run: Path) -> torch.Tensor:
    records = map(json.loads, (run / "metrics.jsonl").open())
    return torch.tensor([r["loss"] for r in records if "loss" in r])


# --------------------------------------------------------------------------- seal run


def _run_config(tmp_path: Path, tiny_model_dir: Path) -> Path:
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(16))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(5))
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": {"name_or_path": str(tiny_model_dir)},
                "data": {"path": str(data)},
                "safe": {"path": str(safe)},
                "methods": ["full", "seal"],
                "p": [0.5],
                "seeds": [0],
                "selector": {"epochs": 2, "gamma_step": 0.5, "optimizer": "adam", "lr": 0.05},
                "selector_train": {"batch_size": 4, "lr": 0.01, "checkpoint_every": 3},
                "sft": {"epochs": 2, "batch_size": 4, "lr": 0.01, "logging_steps": 1},
                "eval": {"benign": {"path": str(data)}, "safety": {"path": str(safe)}},
            }
        )
    )
    return config


def test_seal_run_under_two_processes_matches_one(tmp_path, tiny_model_dir):
    """`accelerate launch -m sealft.cli run`: the selector (Algorithm 1, with the default
    score: blend and prompt probe), a fine-tune per method and their evaluation, against
    the same command in one process; the twin runs it in micro-batches of 2."""
    argv = ["run", "--config", str(_run_config(tmp_path, tiny_model_dir)), *COMMON]
    log = tmp_path / "two.log"
    proc = _launch(["-m", "sealft.cli", *argv, f"output_dir={tmp_path / 'two'}"], log)
    assert main([*argv, f"output_dir={tmp_path / 'one'}"]) == 0
    twin = ["selector_train.micro_batch_size=2", "sft.micro_batch_size=2"]
    assert main([*argv, *twin, f"output_dir={tmp_path / 'twin'}"]) == 0
    _finish(proc, log)

    one, two, twin = (tmp_path / name / "seed0" for name in ("one", "two", "twin"))
    _assert_same_scores(one / "select", two / "select", twin / "select")
    for method in ("full", "seal-p0.5"):
        _assert_same_adapter(one / method, two / method, twin / method)
        losses = [_sft_losses(run / method) for run in (one, two, twin)]
        assert_within_twin(losses[1], losses[0], losses[2])
    results = [
        json.loads((tmp_path / name / "results.json").read_text())["runs"]
        for name in ("one", "two", "twin")
    ]
    assert [r["method"] for r in results[1]] == [r["method"] for r in results[0]]
    for a, b, t in zip(*results, strict=True):
        assert a["trained"] == b["trained"] == t["trained"]
        for name, value in a["metrics"].items():
            got, want = torch.tensor([b["metrics"][name]]), torch.tensor([value])
            assert_within_twin(got, want, torch.tensor([t["metrics"][name]]))
    # Rank 0 alone wrote, and every process finished: no checkpoint is left behind.
    two = tmp_path / "two"
    assert not list(two.rglob("checkpoint")) and not list(two.rglob("checkpoint.*"))


# --------------------------------------------------------------------------- the worker

ALG2_FEATURES = [
    "--algorithm",
    "2",
    "selector.kind=features",
    "selector.epochs=2",
    "selector.gamma_step=0.5",
    "selector.optimizer=adam",
    # 13 samples in batches of 3: shares of 2 and 1, and a last batch of one sample.
    "selector_train.batch_size=3",
    "selector_train.micro_batch_size=2",
    "selector_train.safe_batch_size=1",
    "selector_train.lr=0.01",
]


def _select_argv(folder: Path, out: str, *twin: str) -> list[str]:
    return [
        "select",
        "--model",
        str(folder / "model"),
        "--data",
        str(folder / "ft.jsonl"),
        "--safe",
        str(folder / "safe.jsonl"),
        "--output-dir",
        str(folder / out),
        *ALG2_FEATURES,
        *COMMON,
        *twin,
    ]


def _finetune_argv(folder: Path, out: str, scores: str, *twin: str) -> list[str]:
    return [
        "finetune",
        "--model",
        str(folder / "model"),
        "--data",
        str(folder / "ft.jsonl"),
        "--scores",
        str(folder / scores / "scores.parquet"),
        # The top 8 of 13: two optimiser steps of 4 an epoch, split 2 + 2 over the two
        # processes, against one process's 2 forward passes of 2.
        "--p",
        "0.62",
        "--output-dir",
        str(folder / out),
        "sft.batch_size=4",
        "sft.micro_batch_size=2",
        "sft.epochs=2",
        "sft.lr=0.01",
        *COMMON,
        *twin,
    ]


def _trainer(
    folder: Path, epochs: int, run_dir: Path | None, world=distributed.SINGLE, micro: int = 2
):
    """Algorithm 1 (both adapters) on batches of 3 of 13 samples."""
    tok = AutoTokenizer.from_pretrained(folder / "model")
    torch.manual_seed(0)
    model = add_lora(
        AutoModelForCausalLM.from_pretrained(folder / "model"),
        LoraSettings(r=2, alpha=4),
        adapter_names(1),
    )
    ft = encode(load_samples(folder / "ft.jsonl").samples, tok, max_length=48)
    sf = encode(load_samples(folder / "safe.jsonl").samples, tok, max_length=48)
    return BilevelTrainer(
        model,
        ft,
        sf,
        selector_cfg=SelectorConfig(
            algorithm=1, epochs=epochs, gamma_step=0.5, warmup_epochs=0, optimizer="adam"
        ),
        train_cfg=SelectorTrainConfig(lr=1e-2, batch_size=3, micro_batch_size=micro),
        runtime=RuntimeConfig(precision="fp32"),
        pad=pad_id(tok),
        seed=0,
        lora=True,
        device=torch.device("cpu"),
        progress=False,
        run_dir=run_dir,
        world=world,
    )


def _resumed(folder: Path, checkpoint_of: str, world=distributed.SINGLE) -> torch.Tensor:
    """The second epoch, from the checkpoint another run wrote after its first."""
    trainer = _trainer(folder, 2, None, world)
    trainer.load_checkpoint(find_checkpoint(folder / checkpoint_of / CHECKPOINT))
    return trainer.train().logits.detach()


def _worker(folder: Path) -> None:
    """What each of the two launched processes runs (`python tests/test_distributed.py`)."""
    here = distributed.world("cpu")
    assert here.size == 2
    assert main(_select_argv(folder, "select-two")) == 0
    assert main(_finetune_argv(folder, "finetune-two", "select-two")) == 0
    _trainer(folder, 1, folder / "epoch1-two", here).train()
    logits = _resumed(folder, "epoch1-one", here)
    if here.main:
        save_file({"logits": logits.contiguous()}, str(folder / "resumed-by-two.safetensors"))


def test_algorithm2_features_finetune_and_resume_across_process_counts(tmp_path, tiny_model_dir):
    folder = tmp_path
    (folder / "model").symlink_to(tiny_model_dir, target_is_directory=True)
    write_jsonl(folder / "ft.jsonl", alpaca_rows(13))
    write_jsonl(folder / "safe.jsonl", safe_rows(5))
    # The one-process checkpoint the two processes resume from.
    _trainer(folder, 1, folder / "epoch1-one").train()
    log = folder / "worker.log"
    proc = _launch([str(Path(__file__)), str(folder)], log)
    assert main(_select_argv(folder, "select-one")) == 0
    assert main(_finetune_argv(folder, "finetune-one", "select-one")) == 0
    whole = _trainer(folder, 2, None).train().logits.detach()
    # The twins: the same runs in micro-batches of one sample.
    assert main(_select_argv(folder, "select-twin", "selector_train.micro_batch_size=1")) == 0
    twin_ft = _finetune_argv(folder, "finetune-twin", "select-one", "sft.micro_batch_size=1")
    assert main(twin_ft) == 0
    whole_twin = _trainer(folder, 2, None, micro=1).train().logits.detach()
    _finish(proc, log)

    _assert_same_scores(*(folder / f"select-{n}" for n in ("one", "two", "twin")), learned=False)
    _assert_same_adapter(*(folder / f"finetune-{n}" for n in ("one", "two", "twin")))
    by_two = load_file(str(folder / "resumed-by-two.safetensors"))["logits"]
    assert_within_twin(by_two, whole, whole_twin)
    assert_within_twin(_resumed(folder, "epoch1-two"), whole, whole_twin)


# --------------------------------------------------------------------------- in-process


def test_shares_cover_each_batch_exactly_once():
    batch = torch.tensor([7, 3, 9, 1, 4])
    for size in (1, 2, 3, 7):
        worlds = [distributed.World(r, size) for r in range(size)]
        shares = [w.share(batch) for w in worlds]
        assert torch.equal(torch.cat(shares), batch)
        assert [len(s) for s in shares] == worlds[0].share_sizes(len(batch))


def test_sharding_engines_are_refused_for_the_selector_only(
    monkeypatch, tmp_path, capsys, tiny_model_dir
):
    assert distributed.engine() == "none"
    distributed.require_replicated("seal select")
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    distributed.require_replicated("seal select")  # ZeRO-2 runs the selector as DDP
    monkeypatch.delenv("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    ds_config = tmp_path / "ds.json"
    ds_config.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_CONFIG_FILE", str(ds_config))
    assert distributed.engine() == "deepspeed-zero3"
    with pytest.raises(ConfigError, match="supported: one process, DDP"):
        distributed.require_replicated("seal select")
    monkeypatch.delenv("ACCELERATE_USE_DEEPSPEED")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(4))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(2))
    argv = ["select", "--model", str(tiny_model_dir), "--data", str(data), "--safe", str(safe)]
    assert main([*argv, "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "seal select does not run under fsdp" in err
    assert not (tmp_path / "out").exists()
    run = {"model": {"name_or_path": str(tiny_model_dir)}, "data": {"path": str(data)}}
    run |= {"safe": {"path": str(safe)}, "output_dir": str(tmp_path / "run")}
    with pytest.raises(ConfigError, match="seal run with a SEAL method"):
        run_experiment(ExperimentRecipeConfig.model_validate(run | {"methods": ["seal"]}))
    assert not (tmp_path / "run").exists()


def test_one_optimiser_step_keeps_its_size_across_processes():
    cfg = SFTConfig(batch_size=8, micro_batch_size=4)
    assert per_process_batches(cfg, 1) == (4, 2)
    assert per_process_batches(cfg, 2) == (4, 1)
    assert per_process_batches(cfg, 4) == (2, 1)
    assert per_process_batches(SFTConfig(batch_size=6, micro_batch_size=2), 2) == (1, 3)
    with pytest.raises(ConfigError, match="multiple of 3"):
        per_process_batches(cfg, 3)


def test_settings_that_do_not_change_results_do_not_make_another_run(tmp_path):
    def config(**changes) -> str:
        tree = {"seed": 0, "selector_train": {"lr": 0.1, "checkpoint_every": 50}}
        tree["sft"] = {"save_steps": None, "report_to": "none"}
        for key, value in changes.items():
            section, name = key.split("__")
            tree[section][name] = value
        return yaml.safe_dump(tree)

    run = tmp_path / "run"
    assert not prepare_run_dir(run, config(), "x", done_marker="done")
    (run / "done").touch()
    for neutral in ({"selector_train__checkpoint_every": 5}, {"sft__save_steps": 10}):
        assert prepare_run_dir(run, config(**neutral), "x", done_marker="done")
    assert "checkpoint_every: 50" in (run / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="a different config"):
        prepare_run_dir(run, config(selector_train__lr=0.2), "x", done_marker="done")


# What each shipped config makes of `seal select`: the engine and whether it is refused.
SHIPPED = {
    "cpu-gloo.yaml": ("ddp", False),
    "ddp.yaml": ("ddp", False),
    "ddp-multinode.yaml": ("ddp", False),
    "deepspeed-zero2.yaml": ("deepspeed-zero2", False),
    "deepspeed-zero3.yaml": ("deepspeed-zero3", True),
    "fsdp.yaml": ("fsdp", True),
}


def test_every_shipped_config_is_tested():
    assert {p.name for p in CPU_GLOO.parent.glob("*.yaml")} == set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_launcher_accepts_each_shipped_config(name, monkeypatch):
    """accelerate's own validation of the file, then the environment it would give each
    process, as sealft reads it (no process is started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    argv = ["--config_file", str(CPU_GLOO.parent / name), "-m", "sealft.cli", "select"]
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.num_processes >= 2 and defaults.mixed_precision == "no"
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        env = prepare_deepspeed_cmd_env(args)[1]
    else:
        env = prepare_multi_gpu_env(args)
    for key, value in {**env, "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    expected, refused = SHIPPED[name]
    assert distributed.engine() == expected
    assert distributed.shards_parameters() == refused


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
