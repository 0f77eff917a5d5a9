"""Config names, and the keys renamed in 0.2 that still load for one release."""

import warnings

import pytest

from sealft.cli import main
from sealft.config import (
    ConfigError,
    EvalRecipeConfig,
    ExperimentRecipeConfig,
    FinetuneRecipeConfig,
    RuntimeConfig,
    SelectRecipeConfig,
    SFTConfig,
    load_config,
)
from sealft.sft import training_arguments


def _renamed(cls, tree):
    with pytest.warns(FutureWarning) as caught:
        cfg = cls.model_validate(tree)
    return cfg, " ".join(str(w.message) for w in caught)


def test_select_train_section_is_now_selector_train_and_runtime():
    cfg, said = _renamed(
        SelectRecipeConfig,
        {"train": {"batch_size": 4, "micro_batch_size": 2, "precision": "fp32", "device": "cpu"}},
    )
    assert (cfg.selector_train.batch_size, cfg.selector_train.micro_batch_size) == (4, 2)
    assert cfg.runtime == RuntimeConfig(device="cpu", precision="fp32")
    assert "'train'" in said and "'selector_train'" in said and "'runtime.device'" in said


def test_old_sft_batches_become_samples_per_step():
    cfg, said = _renamed(
        FinetuneRecipeConfig, {"train": {"batch_size": 4, "gradient_accumulation": 2, "lr": 1e-3}}
    )
    assert (cfg.sft.batch_size, cfg.sft.micro_batch_size, cfg.sft.lr) == (8, 4, 1e-3)
    assert cfg.sft.accumulation_steps == 2 and "'sft'" in said
    plain, _ = _renamed(FinetuneRecipeConfig, {"train": {"batch_size": 4}})
    assert (plain.sft.batch_size, plain.sft.micro_batch_size) == (4, None)


def test_experiment_sections_and_eval_device_move():
    cfg, said = _renamed(
        ExperimentRecipeConfig,
        {"train": {"lr": 1e-2}, "finetune": {"epochs": 1, "device": "cpu"}},
    )
    assert cfg.selector_train.lr == 1e-2 and cfg.sft.epochs == 1 and cfg.runtime.device == "cpu"
    assert "'finetune'" in said
    ev, said = _renamed(EvalRecipeConfig, {"device": "cpu", "precision": "bf16"})
    assert ev.runtime == RuntimeConfig(device="cpu", precision="bf16")


def test_renamed_keys_that_disagree_or_collide_are_errors():
    with (
        pytest.warns(FutureWarning),
        pytest.raises(ValueError, match="conflicts with 'runtime.device'"),
    ):
        ExperimentRecipeConfig.model_validate(
            {"train": {"device": "cuda"}, "finetune": {"device": "cpu"}}
        )
    with pytest.raises(ValueError, match="not both"):
        FinetuneRecipeConfig.model_validate({"train": {}, "sft": {}})


def test_new_keys_load_without_a_warning(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sft: {batch_size: 8, micro_batch_size: 2}\nruntime: {device: cpu}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = load_config(FinetuneRecipeConfig, path)
    assert cfg.sft.accumulation_steps == 4


def test_old_yaml_and_overrides_load_through_the_cli_loader(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("train:\n  lr: 0.5\n")
    with pytest.warns(FutureWarning):
        cfg = load_config(SelectRecipeConfig, path, ["train.batch_size=3"])
    assert (cfg.selector_train.lr, cfg.selector_train.batch_size) == (0.5, 3)


def test_sft_batch_must_be_a_multiple_of_the_micro_batch():
    with pytest.raises(ConfigError, match="not a multiple of micro_batch_size 3"):
        load_config(FinetuneRecipeConfig, None, ["sft.batch_size=8", "sft.micro_batch_size=3"])


def test_training_arguments_split_a_step_into_forward_passes(tmp_path):
    args = training_arguments(
        SFTConfig(batch_size=8, micro_batch_size=2), RuntimeConfig(device="cpu"), tmp_path, 0
    )
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 4)
    assert (args.adam_beta1, args.adam_beta2) == (0.9, 0.95)


def test_help_names_the_new_sections(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for key in ("selector_train.batch_size", "sft.micro_batch_size", "runtime.precision"):
        assert key in out
