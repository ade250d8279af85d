"""The ``sciml`` command: list, run and reproduce.

    sciml list [--tag T]
    sciml run NAME [--smoke] [--seed N] [--device auto|cpu|cuda] [--set key=value ...] [--out DIR]
    sciml reproduce PAPER|all [--smoke | --full] [--seed N] [--device ...] [--out DIR]

Exit status: 0 on success, 1 when a run failed, 2 for a usage error (unknown name or key).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sciml.runner import EXPERIMENTS, REPRODUCTIONS, discover, run_experiment, run_reproduction


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific ML and tensor methods: experiments "
                                     "and paper reproductions.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list experiments and paper reproductions")
    p_list.add_argument("--tag", default=None, help="only experiments with this tag")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (auto = cuda when available)")
    common.add_argument("--out", default="results", help="output root (default: results)")
    common.add_argument("--quiet", action="store_true", help="no progress bars or log lines")

    p_run = sub.add_parser("run", parents=[common], help="run one experiment")
    p_run.add_argument("name")
    p_run.add_argument("--smoke", action="store_true", help="a seconds-long version (for tests)")
    p_run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field (repeatable)")

    p_rep = sub.add_parser("reproduce", parents=[common], help="reproduce a paper's numbers ('all' for every paper)")
    p_rep.add_argument("paper")
    scale = p_rep.add_mutually_exclusive_group()
    scale.add_argument("--smoke", action="store_true", help="seconds-long version (for tests)")
    scale.add_argument("--full", action="store_true", help="the paper's own scale (needs a GPU for most papers)")
    return parser


def _cmd_list(tag: str | None) -> int:
    print("Experiments (sciml run NAME):")
    for name, exp in EXPERIMENTS.items():
        if tag is None or tag in exp.tags:
            print(f"  {name:<38} {exp.summary}")
    print("\nPaper reproductions (sciml reproduce PAPER | all):")
    for key, rep in REPRODUCTIONS.items():
        arxiv = f" [arXiv {rep.paper.arxiv}]" if rep.paper.arxiv else ""
        print(f"  {key:<38} {rep.summary}{arxiv}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    outcome = run_experiment(args.name, overrides=args.overrides, seed=args.seed, device=args.device,
                             smoke=args.smoke, out=args.out, quiet=args.quiet)
    for key, value in outcome.metrics.items():
        print(f"  {key} = {value}")
    print(f"{outcome.name}: {outcome.status} -> {outcome.run_dir / 'result.json'}")
    if outcome.status == "failed":
        print(f"error: {outcome.name} failed: {outcome.message}", file=sys.stderr)
        return 1
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    scale = "smoke" if args.smoke else "full" if args.full else "default"
    keys = REPRODUCTIONS.names() if args.paper == "all" else [args.paper]
    if args.paper != "all":
        REPRODUCTIONS.get(args.paper)  # unknown name -> KeyError with hints, before any work starts
    if not keys:
        print("no paper reproductions are registered yet")
        return 0
    outcomes = []
    for key in keys:
        print(f"== reproducing {key} ({scale}) ...", file=sys.stderr, flush=True)
        outcome = run_reproduction(key, scale=scale, seed=args.seed, device=args.device, out=args.out,
                                   quiet=args.quiet)
        outcomes.append(outcome)
        print((outcome.run_dir / "comparison.md").read_text())
        if outcome.status == "failed":
            print(f"error: {key} failed: {outcome.message}", file=sys.stderr)
    summary = _summary(outcomes, scale)
    summary_path = Path(args.out) / "reproductions" / "summary.md"
    summary_path.write_text(summary)
    print(summary)
    print(f"Comparison tables, result.json and plots: {Path(args.out) / 'reproductions'}/<paper>/<run-id>/"
          f"  (summary: {summary_path})")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _summary(outcomes, scale: str) -> str:
    lines = [f"# Reproduction summary ({scale} scale)", "",
             "| paper | status | match | in-band | off | paper-only | not-measured | folder |",
             "|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        counts = {v: sum(r["verdict"] == v for r in o.table or []) for v in
                  ("match", "in-band", "off", "paper-only", "not-measured")}
        lines.append(f"| {o.name} | {o.status} | {counts['match']} | {counts['in-band']} | {counts['off']} | "
                     f"{counts['paper-only']} | {counts['not-measured']} | {o.run_dir} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        discover()
        if args.command == "list":
            return _cmd_list(args.tag)
        if args.command == "run":
            return _cmd_run(args)
        return _cmd_reproduce(args)
    except (KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
