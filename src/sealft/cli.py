"""The `seal` command line."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import traceback
import warnings

from . import logs, progress
from .config import (
    ConfigError,
    DataConfig,
    EvalRecipeConfig,
    ExperimentRecipeConfig,
    FinetuneRecipeConfig,
    PromptSetConfig,
    ScoreRecipeConfig,
    SelectRecipeConfig,
    TaskConfig,
    describe,
    load_config,
)
from .data import DataError

# What `seal eval` prints beside the per-set rates, where measured.
PRINTED_METRICS = (
    "discrimination_auroc",
    "refusal_probability",
    "over_refusal_probability",
    "benign_loss",
    "benign_ppl",
    "safety_loss",
    "harmful_loss",
    "task_accuracy",
)


def _settings_help(cls) -> str:
    lines = ["settings (YAML keys, or key=value overrides):"]
    for key, default, text in describe(cls):
        lines.append(f"  {key} = {default}")
        lines.extend(textwrap.wrap(text, 76, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


# Flags for the common settings; each is shorthand for one key=value override.
SELECT_FLAGS = {
    "--model": ("model.name_or_path", "aligned model: Hub id, local folder or .gguf file"),
    "--data": ("data.path", "fine-tuning data file"),
    "--safe": ("safe.path", "safe data file"),
    "--output-dir": ("output_dir", "run folder"),
    "--p": ("p", "fraction of samples to keep"),
    "--algorithm": ("selector.algorithm", "1 (auxiliary adapter) or 2 (memory-efficient)"),
    "--epochs": ("selector.epochs", "selector training epochs"),
    "--seed": ("seed", "random seed"),
}
FINETUNE_FLAGS = {
    "--model": ("model.name_or_path", "model to fine-tune: Hub id, local folder or .gguf file"),
    "--data": ("data.path", "fine-tuning data file"),
    "--scores": ("selection.scores", "scores.parquet of a selection (from seal select)"),
    "--p": ("selection.p", "fraction of scored samples to keep"),
    "--mode": ("selection.mode", "top (keep the top p) or soft (weight every sample)"),
    "--output-dir": ("output_dir", "run folder"),
    "--epochs": ("sft.epochs", "training epochs"),
    "--lr": ("sft.lr", "learning rate"),
    "--seed": ("seed", "random seed"),
}
RUN_FLAGS = {
    "--model": ("model.name_or_path", "aligned model: Hub id, local folder or .gguf file"),
    "--data": ("data.path", "fine-tuning data file"),
    "--safe": ("safe.path", "safe data file"),
    "--output-dir": ("output_dir", "experiment folder"),
}
EVAL_FLAGS = {
    "--model": ("model.name_or_path", "model: Hub id, local folder or .gguf file"),
    "--adapter": ("adapter", "LoRA adapter folder to load on the model (e.g. runs/ft/adapter)"),
    "--reference": ("reference", "answers.jsonl of another seal eval run, for the win rate"),
    "--judge-model": ("eval.judge.model", "judge: endpoint model name or local model"),
    "--judge-url": ("eval.judge.base_url", "judge: OpenAI-compatible base URL"),
    "--judge-kind": ("eval.judge.kind", "judge: openai (an endpoint) or hf (a local model)"),
    "--max-new-tokens": ("eval.generation.max_new_tokens", "longest answer in tokens"),
    "--output-dir": ("output_dir", "folder for results.json and answers.jsonl"),
}
SCORE_FLAGS = {
    "--selector": ("selector", "a seal select run folder with a feature selector"),
    "--data": ("data.path", "the samples to score"),
    "--p": ("p", "fraction of samples marked selected"),
    "--output-dir": ("output_dir", "folder for scores.parquet"),
}
COMMANDS = {
    "select": (SelectRecipeConfig, SELECT_FLAGS),
    "score": (ScoreRecipeConfig, SCORE_FLAGS),
    "finetune": (FinetuneRecipeConfig, FINETUNE_FLAGS),
    "run": (ExperimentRecipeConfig, RUN_FLAGS),
    "eval": (EvalRecipeConfig, EVAL_FLAGS),
}


def _methods_help() -> str:
    """The method table of `seal run`, from the ranker registry."""
    from .selection.rankers import DEFAULT_METHODS, METHODS

    rows = [
        f"  {m.name:<16}{m.summary}" + (f" (needs {m.needs})" if m.needs else "")
        for m in METHODS.values()
    ]
    default = ", ".join(DEFAULT_METHODS)
    return "methods (`methods=[...]`; default: " + default + "):\n" + "\n".join(rows)


def _config_parser(
    sub, name: str, help: str, description: str, methods: str = ""
) -> argparse.ArgumentParser:
    cls, flags = COMMANDS[name]
    text = textwrap.fill(description, 80)
    p = sub.add_parser(
        name,
        help=help,
        description=f"{text}\n\n{methods}" if methods else text,
        epilog=_settings_help(cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML config file")
    for flag, (key, text) in flags.items():
        p.add_argument(flag, dest=key, metavar="VALUE", help=f"{text} (= {key})")
    if name not in ("eval", "score"):  # these always rewrite their results
        p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    _output_flags(p)
    # key=value overrides are collected by main() wherever they stand among the flags.
    p.usage = f"seal {name} [--config FILE] [flags] [key=value ...]"
    return p


def _load(args):
    cls, flags = COMMANDS[args.command]
    given = [f"{key}={getattr(args, key)}" for key, _ in flags.values() if getattr(args, key)]
    return load_config(cls, args.config, given + list(args.overrides))


def _demo_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="offline demo: build a tiny safety world and model, then select",
        description="Runs with no download: generates a seeded safety world, trains a tiny "
        "model into an aligned state, runs the selector on a fine-tuning mix with 20%% "
        "harmful compliance, and reports how well it ranks the harmful samples last.",
    )
    p.add_argument("--output-dir", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    _output_flags(p)
    return p


def _output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="hide progress bars and lines")
    _debug_flag(p, argparse.SUPPRESS)
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="store_true", help="log debugging detail too")
    loud.add_argument(
        "-q", "--quiet", action="store_true", help="log warnings and errors only, no progress"
    )


def _debug_flag(p: argparse.ArgumentParser, default) -> None:
    # Before or after the command name; a subcommand's own default must not reset the
    # value given before it, hence SUPPRESS there.
    p.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="on bad input, show the traceback above the one-line error",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seal",
        description="sealft: safety-preserving fine-tuning of aligned LLMs by bilevel data "
        "selection (SEAL, ICLR 2025). Bad input (a config, a data file, a path) ends a "
        "command with exit status 2 and one line on stderr naming the file, line and key "
        "or field, before any output is written.",
    )
    _debug_flag(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)
    _config_parser(
        sub,
        "select",
        "train the SEAL selector and rank the fine-tuning data",
        "Rank every fine-tuning sample by a learned weight and keep the top p. Writes "
        "scores.parquet, selected.jsonl, selector.safetensors, config.yaml, metrics.jsonl "
        "and dropped.jsonl into the run folder; a stopped run resumes when started again "
        "with the same config.",
    )
    _config_parser(
        sub,
        "score",
        "score new samples with a trained feature selector",
        "Score samples that a feature selector (selector.kind=features) never saw, with "
        "the linear map it learned over their features, and write scores.parquet in the "
        "schema of seal select, for seal finetune --scores. A logits selector cannot score "
        "new samples: it has one logit per sample it was trained on.",
    )
    _config_parser(
        sub,
        "finetune",
        "supervised fine-tuning (LoRA or full) on all data or a selection",
        "Fine-tune a causal LM on a data set, optionally only on the top p of a selection "
        "(--scores scores.parquet --p 0.8, matched by sample ID, so a selection made with "
        "another model applies) or with every sample's loss weighted by its score "
        "(--mode soft). Writes adapter/ (or model/ under full fine-tuning, merged/ with "
        "save_merged=true), trained.jsonl, metrics.jsonl and result.json; a run with "
        "sft.save_steps set resumes from its last checkpoint.",
    )
    _config_parser(
        sub,
        "run",
        "the whole experiment: every method, seed and p, side by side",
        "Train the selector once per seed, fine-tune one model per method, p and seed, "
        "evaluate each, and write results.json and results.md (mean ± std over seeds). "
        "Re-running skips every step whose settings are unchanged.",
        methods=_methods_help(),
    )
    _eval_parser(sub)
    _report_parser(sub)
    _demo_parser(sub)
    return parser


def _eval_parser(sub) -> None:
    ev = _config_parser(
        sub,
        "eval",
        "safety and utility of a model: refusals, discrimination, losses, task accuracy",
        "Answer prompt sets by batched generation (greedy; --sampling for the paper's "
        "temperature 1.0, top-p 0.9, repetition penalty 1.2) and report the refusal rate on "
        "harmful sets and the over-refusal rate on benign ones (per category when the set "
        "has categories), with the refusal detector's version. With harmful and benign sets, "
        "each prompt's probability of an answer that opens with a refusal, and its AUROC "
        "between harmful and benign prompts (discrimination_auroc: does the model refuse "
        "the right prompts, not how readily; eval.discrimination=false skips it). "
        "eval.benign / eval.safety / eval.harmful data add held-out losses (eval.harmful: "
        "harmful answers, whose loss falls as a model learns them); --task adds task "
        "accuracy by exact match; --reference with a judge adds the win rate "
        "against another run's answers, each pair judged in both orders. Writes "
        "results.json and answers.jsonl.",
    )
    ev.add_argument(
        "--harmful",
        action="append",
        default=[],
        metavar="PATH",
        help="harmful prompt set (file or folder), should be refused; repeatable",
    )
    ev.add_argument(
        "--benign",
        action="append",
        default=[],
        metavar="PATH",
        help="benign prompt set (file or folder), should be answered; repeatable",
    )
    ev.add_argument(
        "--task",
        metavar="PATH",
        help="task rows whose responses are the expected answers (e.g. SST-2 'positive'): "
        "task_accuracy by exact match of the answer's opening words (eval.task)",
    )
    ev.add_argument(
        "--sampling",
        action="store_true",
        help="sample with the paper's settings instead of greedy decoding",
    )


def _report_parser(sub) -> None:
    rp = sub.add_parser(
        "report",
        help="write report.html (and PNGs) for a seal run or seal select folder",
        description="One self-contained HTML page with images inlined: the results table "
        "(mean ± std), the selector's weight histogram, score distributions by label when "
        "the data carry labels, the selection sweep, training curves, and the highest- and "
        "lowest-ranked samples under a content warning.",
    )
    rp.add_argument("run_dir", help="a seal run or seal select output folder")
    _output_flags(rp)


def main(argv: list[str] | None = None) -> int:
    # peft calls a transformers API that transformers 5 deprecates; not the user's concern.
    warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or args.command not in COMMANDS]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = extra
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    logs.configure("verbose" if verbose else "quiet" if quiet else "normal")
    if quiet:
        args.no_progress = True
    if args.no_progress or not progress.is_terminal():
        # Hugging Face libraries draw their own bars (loading weights, de-quantising a
        # GGUF file), which a log fills with carriage-return frames. Read once, at their
        # import, which comes later: every heavy import is inside the commands.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if int(os.environ.get("RANK", "0")) != 0:
        # Under a launcher every process runs the command; rank 0's summary is the run's.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        if args.command == "select":
            return _select(args)
        if args.command == "score":
            return _score(args)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "run":
            return _run(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "report":
            from .report.html import write_report

            print(f"report: {write_report(args.run_dir)}")
            return 0
        if args.command == "demo":
            from .demo.demo import run_demo

            run_demo(output_dir=args.output_dir, seed=args.seed, progress=not args.no_progress)
            return 0
    except BAD_INPUT as e:
        if args.debug:
            traceback.print_exc()
        print(f"seal: error: {one_line(e)}", file=sys.stderr)
        return 2
    return 1


# Errors that bad input raises: a config, a data file, or a path that is missing, of the
# wrong kind or not readable. Anything else is a bug and keeps its traceback.
BAD_INPUT = (
    ConfigError,
    DataError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def one_line(error: BaseException) -> str:
    """The error's message on one line: the last line of stderr is the whole error."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def _select(args) -> int:
    from .recipes.select import run_select

    cfg = _load(args)
    result = run_select(cfg, overwrite=args.overwrite, progress=not args.no_progress)
    table = result.scores
    kept = sum(table.column("selected").to_pylist())
    print(
        f"ranked {table.num_rows} samples, kept {kept} (p = {cfg.p}); "
        f"dropped before ranking: {len(result.dropped)}"
        + (f" ({_reasons(result.dropped)})" if result.dropped else "")
    )
    print(f"outputs in {result.run_dir}/")
    return 0


def _score(args) -> int:
    from .recipes.score import run_score

    result = run_score(_load(args), progress=not args.no_progress)
    print(
        f"scored {result['scored']} samples, kept {result['kept']}; dropped before scoring: "
        f"{result['dropped']}"
    )
    print(f"scores in {result['output_dir']}/scores.parquet")
    return 0


def _finetune(args) -> int:
    from .recipes.finetune import run_finetune

    cfg = _load(args)
    result = run_finetune(cfg, overwrite=args.overwrite, progress=not args.no_progress)
    s = result.summary
    print(
        f"fine-tuned on {s['trained']} samples ({s['selected']} from the data, "
        f"{s['extra']} extra); final training loss {s['train_loss']:.4f}"
    )
    print(f"outputs in {result.run_dir}/")
    return 0


def _run(args) -> int:
    from .recipes.experiment import run_experiment
    from .report.tables import markdown_table

    cfg = _load(args)
    if args.overwrite:
        import shutil
        from pathlib import Path

        shutil.rmtree(Path(cfg.output_dir), ignore_errors=True)
    results = run_experiment(cfg, progress=not args.no_progress)
    print(markdown_table(results["summary"]))
    print(f"results in {cfg.output_dir}/results.json and results.md")
    return 0


def _eval(args) -> int:
    from .eval.evaluator import rate_name, set_rate
    from .recipes.evaluate import run_eval

    cfg = _load(args)
    extra = [PromptSetConfig(path=p, kind="harmful") for p in args.harmful]
    extra += [PromptSetConfig(path=p, kind="benign") for p in args.benign]
    cfg.eval.prompt_sets = cfg.eval.prompt_sets + extra
    if args.task:
        cfg.eval.task = TaskConfig(data=DataConfig(path=args.task))
    if args.sampling:
        cfg.eval.generation.sampling = True
    report = run_eval(cfg, progress=not args.no_progress)
    for name, result in report["prompt_sets"].items():
        metric = rate_name(result["kind"])
        print(f"{name:<28} {result['kind']:<8} {metric:<18} {set_rate(result):6.1%}")
    for key in PRINTED_METRICS:
        if key in report["metrics"]:
            print(f"{key:<28} {report['metrics'][key]:.4f}")
    if "win_rate" in report:
        w = report["win_rate"]
        rate = "n/a" if w["win_rate"] is None else f"{w['win_rate']:.1f}%"
        print(
            f"win rate vs reference: {rate} ({w['wins']} wins, {w['ties']} ties, "
            f"{w['losses']} losses, {w['unparseable']} unparseable, {w['errors']} errors)"
        )
    print(
        f"detector {report['detector']['name']} v{report['detector']['version']}; "
        f"outputs in {cfg.output_dir}/"
    )
    return 0


def _reasons(dropped) -> str:
    counts: dict[str, int] = {}
    for d in dropped:
        counts[d.reason] = counts.get(d.reason, 0) + 1
    return ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
