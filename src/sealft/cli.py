"""The `seal` command line."""

from __future__ import annotations

import argparse
import sys
import textwrap

from .config import ConfigError, SelectConfig, describe, load_config
from .data import DataError


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


def _select_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "select",
        help="train the SEAL selector and rank the fine-tuning data",
        description=textwrap.fill(
            "Rank every fine-tuning sample by a learned weight and keep the top p. Writes "
            "scores.parquet, selected.jsonl, selector.safetensors, config.yaml, metrics.jsonl "
            "and dropped.jsonl into the run folder; a stopped run resumes when started again "
            "with the same config.",
            80,
        ),
        epilog=_settings_help(SelectConfig),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="YAML config file")
    for flag, (key, text) in SELECT_FLAGS.items():
        p.add_argument(flag, dest=key, metavar="VALUE", help=f"{text} (= {key})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    # key=value overrides are collected by main() wherever they stand among the flags.
    p.usage = "seal select [--config FILE] [flags] [key=value ...]"
    return p


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
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seal",
        description="sealft: safety-preserving fine-tuning of aligned LLMs by bilevel data "
        "selection (SEAL, ICLR 2025).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _select_parser(sub)
    _demo_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or args.command != "select"]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    args.overrides = extra
    try:
        if args.command == "select":
            return _select(args)
        if args.command == "demo":
            from .demo import run_demo

            run_demo(output_dir=args.output_dir, seed=args.seed, progress=not args.no_progress)
            return 0
    except (ConfigError, DataError, FileNotFoundError) as e:
        print(f"seal: error: {e}", file=sys.stderr)
        return 2
    return 1


def _select(args) -> int:
    from .pipeline import run_select

    flags = [
        f"{key}={getattr(args, key)}"
        for _, (key, _) in SELECT_FLAGS.items()
        if getattr(args, key) is not None
    ]
    cfg = load_config(SelectConfig, args.config, flags + list(args.overrides))
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


def _reasons(dropped) -> str:
    counts: dict[str, int] = {}
    for d in dropped:
        counts[d.reason] = counts.get(d.reason, 0) + 1
    return ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
