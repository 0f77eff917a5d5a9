"""What a run folder, a Hub repository or an API key can make sealft do: (a) nothing is ever
unpickled, (b) a repository's own code runs only when trust_remote_code asks for it, and
(c) a judge's API key is read from the environment and written nowhere."""

import ast
import json
import logging
import pickle
from pathlib import Path

import pytest
import torch
from conftest import alpaca_rows, safe_rows, write_jsonl
from judge_server import serve
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from sealft.cli import main
from sealft.config import (
    GuardConfig,
    LoraSettings,
    ModelConfig,
    RuntimeConfig,
    SelectorConfig,
    SelectorTrainConfig,
)
from sealft.data import encode, load_samples, pad_id
from sealft.model.load import load_configured
from sealft.model.lora import add_lora
from sealft.selection.bilevel import BilevelTrainer, adapter_names

SRC = Path(__file__).resolve().parents[1] / "src" / "sealft"
UNPICKLERS = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
# from_pretrained of these loads no model code of a repository's own: PEFT adapters, and a
# class already in memory (`type(model)`).
NO_REMOTE_CODE = {"PeftModel", "type"}


def _sources():
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC), ast.parse(path.read_text(encoding="utf-8"))


def _unpickling(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] in UNPICKLERS for a in node.names)
    if isinstance(node, ast.ImportFrom):
        root = (node.module or "").split(".")[0]
        return root in UNPICKLERS or (root == "torch" and any(a.name == "load" for a in node.names))
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if (owner, func.attr) == ("torch", "load") or func.attr == "read_pickle":
            return True
    return any(
        k.arg == "allow_pickle" and not (isinstance(k.value, ast.Constant) and not k.value.value)
        for k in node.keywords
    )


# --------------------------------------------------------------------------- (a) no pickle


def test_the_source_never_unpickles():
    found = [
        f"{path}:{node.lineno}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if _unpickling(node)
    ]
    assert not found, f"torch.load / pickle in the source: {found}"


def test_a_checkpoint_loads_with_every_unpickler_disabled(tiny_model_dir, tmp_path, monkeypatch):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ft = encode(
        load_samples(write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(6))).samples, tok, max_length=48
    )
    sf = encode(
        load_samples(write_jsonl(tmp_path / "sf.jsonl", safe_rows(3))).samples, tok, max_length=48
    )

    def trainer():
        model = add_lora(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir),
            LoraSettings(r=2, alpha=4),
            adapter_names(1),
        )
        return BilevelTrainer(
            model,
            ft,
            sf,
            selector_cfg=SelectorConfig(algorithm=1, epochs=1, optimizer="adam"),
            train_cfg=SelectorTrainConfig(batch_size=2, checkpoint_every=2),
            runtime=RuntimeConfig(precision="fp32"),
            pad=pad_id(tok),
            seed=0,
            lora=True,
            device=torch.device("cpu"),
            progress=False,
            run_dir=tmp_path / "run",
        )

    first = trainer()
    first.train()
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoint").iterdir())
    assert saved == ["state.json", "tensors.safetensors"]

    def refuse(*args, **kwargs):
        raise AssertionError("something unpickled")

    for owner, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(owner, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    second = trainer()
    second.load_checkpoint(tmp_path / "run" / "checkpoint")
    assert torch.equal(second.selector.logits, first.selector.logits)
    assert second.epochs_done == 1


def test_an_old_pickled_checkpoint_is_refused_not_loaded(tmp_path, tiny_model_dir, capsys):
    data = write_jsonl(tmp_path / "ft.jsonl", alpaca_rows(8))
    safe = write_jsonl(tmp_path / "safe.jsonl", safe_rows(3))
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not to be unpickled")
    argv = ["select", "--model", str(tiny_model_dir), "--data", str(data), "--safe", str(safe)]
    argv += ["--output-dir", str(run), "--no-progress", "runtime.precision=fp32"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "--overwrite" in err
    assert main([*argv, "--overwrite"]) == 0


# --------------------------------------------------------------------------- (b) remote code


def _receiver(func: ast.Attribute) -> str | None:
    value = func.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id  # type(x).from_pretrained
    return value.id if isinstance(value, ast.Name) else None


def test_every_from_pretrained_in_the_source_names_trust_remote_code():
    """A call passes trust_remote_code itself or through **kwargs (whose building the
    runtime tests below check)."""
    missing = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("from_pretrained", "from_config")
            ):
                continue
            if _receiver(node.func) in NO_REMOTE_CODE:
                continue
            if not any(k.arg in ("trust_remote_code", None) for k in node.keywords):
                missing.append(f"{path}:{node.lineno}")
    assert not missing, f"from_pretrained without trust_remote_code: {missing}"


def _spy(monkeypatch, *classes) -> list[tuple[str, object]]:
    seen = []
    for cls in classes:
        real = cls.from_pretrained

        def spy(*args, _real=real, _name=cls.__name__, **kwargs):
            seen.append((_name, kwargs.get("trust_remote_code", "not given")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    return seen


@pytest.mark.parametrize("trust", [False, True])
def test_models_and_tokenizers_trust_remote_code_only_on_request(
    tiny_model_dir, monkeypatch, trust
):
    seen = _spy(monkeypatch, AutoModelForCausalLM, AutoTokenizer)
    settings = {"trust_remote_code": True} if trust else {}
    load_configured(ModelConfig(name_or_path=str(tiny_model_dir), **settings))
    assert sorted(seen) == [("AutoModelForCausalLM", trust), ("AutoTokenizer", trust)]


@pytest.mark.parametrize("trust", [False, True])
def test_the_guard_trusts_remote_code_only_on_request(tiny_model_dir, monkeypatch, trust):
    from sealft.selection.guard import load_guard

    seen = _spy(monkeypatch, AutoConfig, AutoModelForCausalLM, AutoTokenizer)
    settings = {"trust_remote_code": True} if trust else {}
    load_guard(GuardConfig(model=str(tiny_model_dir), kind="causal", **settings), device="cpu")
    # (transformers itself asks AutoConfig again, passing the setting on.)
    assert set(seen) == {
        (name, trust) for name in ("AutoConfig", "AutoModelForCausalLM", "AutoTokenizer")
    }


# --------------------------------------------------------------------------- (c) API keys


def test_a_judge_api_key_leaves_no_trace(tmp_path, tiny_model_dir, monkeypatch, capfd, caplog):
    secret = "sk-test-Zq8vX2mN4pL6rT0w"
    monkeypatch.setenv("SEAL_TEST_JUDGE_KEY", secret)
    caplog.set_level(logging.DEBUG)  # every library's debug log, the HTTP client's included
    prompts = write_jsonl(tmp_path / "benign.jsonl", [{"prompt": f"say w{i}"} for i in range(3)])
    base = ["eval", "--model", str(tiny_model_dir), "--benign", str(prompts), "--no-progress"]
    base += ["eval.generation.max_new_tokens=4", "runtime.device=cpu", "tokenize.max_length=64"]
    assert main([*base, "--output-dir", str(tmp_path / "reference")]) == 0
    answers = tmp_path / "reference" / "answers.jsonl"
    rows = [json.loads(x) for x in answers.read_text().splitlines()]
    write_jsonl(answers, [{**r, "answer": r["answer"] + " GOOD"} for r in rows])
    judged = [*base, "--judge-model", "j", "--reference", str(answers), "-v"]
    judged += ["eval.judge.api_key_env=SEAL_TEST_JUDGE_KEY"]
    # A judge that answers, then one that echoes the key in its 401 body, as OpenAI's does.
    for mode in ("good", "deny"):
        out = tmp_path / mode
        with serve(mode) as (url, requests):
            argv = [*judged, "--judge-url", url, "--output-dir", str(out)]
            argv += [f"eval.judge.cache={tmp_path / 'cache' / mode / 'judgments.jsonl'}"]
            assert main(argv) == 0
        assert requests and {r["auth"] for r in requests} == {f"Bearer {secret}"}
        assert (out / "results.json").exists()
    assert json.loads((tmp_path / "deny" / "results.json").read_text())["win_rate"]["errors"]
    written = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(p.name == "judgments.jsonl" for p in written)
    assert not [p for p, data in written.items() if secret.encode() in data]
    out, err = capfd.readouterr()
    assert secret not in out and secret not in err
    assert secret not in caplog.text
