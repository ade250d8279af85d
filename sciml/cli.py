"""The ``sciml`` command: list, show, run, reproduce and rerun.

    sciml list [--tag T]
    sciml show NAME                                  # an experiment's or reproduction's config fields
    sciml run NAME [--smoke] [--seed N] [--device auto|cpu|cuda] [--set key=value ...] [--out DIR]
    sciml reproduce PAPER|all [--smoke | --full] [--set key=value ...] [--seed N] [--device ...] [--out DIR]
    sciml rerun PATH/TO/result.json [--out DIR] [--device ...]

Exit status: 0 on success, 1 when a run failed, 2 for a usage error (unknown name or key, unwritable output
folder), 130 when interrupted with Ctrl-C (the run's result.json then says "interrupted").
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sciml.core import close_matches
from sciml.runner import EXPERIMENTS, REPRODUCTIONS, discover, run_experiment, run_reproduction
from sciml.runner.discover import BROKEN, broken_hint
from sciml.runner.reproduction import VERDICTS
from sciml.runner.run import RunInterrupted, RunOutcome, rerun, resolve_reproduction_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sciml", description="Scientific ML and tensor methods: experiments "
                                     "and paper reproductions.")
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list experiments and paper reproductions")
    p_list.add_argument("--tag", default=None, help="only experiments with this tag")

    p_show = sub.add_parser("show", help="show an experiment's or reproduction's config fields and defaults")
    p_show.add_argument("name")
    p_show.add_argument("--smoke", action="store_true", help="the smoke-scale defaults")
    p_show.add_argument("--full", action="store_true", help="the full-scale defaults (reproductions)")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=_seed, default=0, help="a non-negative integer (default 0)")
    common.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (auto = cuda when available)")
    common.add_argument("--out", default="results", help="output root (default: results)")
    common.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                           help="override a config field (repeatable; see `sciml show NAME`)")

    p_run = sub.add_parser("run", parents=[common, overrides], help="run one experiment")
    p_run.add_argument("name")
    p_run.add_argument("--smoke", action="store_true", help="a seconds-long version (for tests)")

    p_rep = sub.add_parser("reproduce", parents=[common, overrides],
                           help="reproduce a paper's numbers ('all' for every paper)")
    p_rep.add_argument("paper")
    scale = p_rep.add_mutually_exclusive_group()
    scale.add_argument("--smoke", action="store_true", help="seconds-long version (for tests; never 'match')")
    scale.add_argument("--full", action="store_true", help="the paper's own scale (needs a GPU for most papers)")

    p_rerun = sub.add_parser("rerun", help="repeat a run exactly from its result.json")
    p_rerun.add_argument("result", help="path to a result.json (or its run folder)")
    p_rerun.add_argument("--out", default=None, help="output root (default: results)")
    p_rerun.add_argument("--device", default=None, help="default: the recorded device")
    p_rerun.add_argument("--quiet", action="store_true")
    return parser


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _cmd_list(tag: str | None) -> int:
    if tag is not None and not any(tag in exp.tags for _, exp in EXPERIMENTS.items()):
        tags = sorted({t for _, exp in EXPERIMENTS.items() for t in exp.tags})
        raise ValueError(f"no experiment has the tag {tag!r}; tags in use: {', '.join(tags) or '(none)'}")
    print("Experiments (sciml run NAME):")
    for name, exp in EXPERIMENTS.items():
        if tag is None or tag in exp.tags:
            print(f"  {name:<38} {exp.summary}")
    print("\nPaper reproductions (sciml reproduce PAPER | all):")
    for key, rep in REPRODUCTIONS.items():
        arxiv = f" [arXiv {rep.paper.arxiv}]" if rep.paper.arxiv else ""
        print(f"  {key:<38} {rep.summary}{arxiv}")
    if BROKEN:
        print("\nBroken modules (not loaded; fix the file to use what it registers):")
        for module, error in sorted(BROKEN.items()):
            print(f"  {module:<38} {error}")
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    scale = "smoke" if args.smoke else "full" if args.full else "default"
    if args.name in REPRODUCTIONS:
        cfg, kind = resolve_reproduction_config(args.name, scale), "reproduction"
    elif args.name in EXPERIMENTS:
        cfg, kind = EXPERIMENTS.get(args.name).config(), "experiment"
        if args.smoke:
            cfg = cfg.override({"smoke": True})
    else:
        _unknown(args.name)
    print(f"{kind} {args.name} ({type(cfg).__name__}, {scale} scale); change a field with --set KEY=VALUE:")
    for name, type_name, value in cfg.describe():
        print(f"  {name:<28} {type_name:<24} {value!r}")
    return 0


def _unknown(name: str):
    names = EXPERIMENTS.names() + REPRODUCTIONS.names()
    raise KeyError(f"unknown experiment or reproduction {name!r}{close_matches(name, names)}; "
                   f"`sciml list` shows the valid names" + broken_hint())


def _cmd_run(args: argparse.Namespace) -> int:
    if args.name not in EXPERIMENTS:
        raise KeyError(str(_safe_get(EXPERIMENTS, args.name)))
    outcome = run_experiment(args.name, overrides=args.overrides, seed=args.seed, device=args.device,
                             smoke=args.smoke, out=args.out, quiet=args.quiet)
    return _report_experiment(outcome)


def _report_experiment(outcome: RunOutcome) -> int:
    for key, value in outcome.metrics.items():
        print(f"  {key} = {value}")
    print(f"{outcome.name}: {outcome.status} -> {outcome.run_dir / 'result.json'}")
    if outcome.status == "failed":
        print(f"error: {outcome.name} failed: {outcome.message}", file=sys.stderr)
        return 1
    return 0


def _safe_get(registry, name: str) -> str:
    try:
        registry.get(name)
    except KeyError as err:
        return err.args[0] + broken_hint()
    return ""


def _cmd_reproduce(args: argparse.Namespace) -> int:
    scale = "smoke" if args.smoke else "full" if args.full else "default"
    if args.paper == "all":
        if args.overrides:
            raise ValueError("--set applies to one reproduction; name it instead of 'all'")
        keys = REPRODUCTIONS.names()
    else:
        if args.paper not in REPRODUCTIONS:
            raise KeyError(_safe_get(REPRODUCTIONS, args.paper))
        resolve_reproduction_config(args.paper, scale, args.overrides)   # bad --set fails before any work
        keys = [args.paper]
    if not keys:
        print("no paper reproductions are registered yet")
        return 0
    outcomes = []
    for key in keys:
        print(f"== reproducing {key} ({scale}) ...", file=sys.stderr, flush=True)
        outcome = run_reproduction(key, scale=scale, seed=args.seed, device=args.device, out=args.out,
                                   quiet=args.quiet, overrides=args.overrides)
        outcomes.append(outcome)
        print((outcome.run_dir / "comparison.md").read_text())
        if outcome.status == "failed":
            print(f"error: {key} failed: {outcome.message}", file=sys.stderr)
    summary = summary_markdown(outcomes, scale)
    summary_path = Path(args.out) / "reproductions" / "summary.md"
    summary_path.write_text(summary)
    print(summary)
    print(f"Comparison tables, result.json and plots: {Path(args.out) / 'reproductions'}/<paper>/<run-id>/"
          f"  (summary: {summary_path})")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _cmd_rerun(args: argparse.Namespace) -> int:
    outcome = rerun(args.result, out=args.out, device=args.device, quiet=args.quiet)
    if outcome.table is None:
        return _report_experiment(outcome)
    print((outcome.run_dir / "comparison.md").read_text())
    print(f"{outcome.name}: {outcome.status} -> {outcome.run_dir / 'result.json'}")
    return 1 if outcome.status == "failed" else 0


def summary_markdown(outcomes, scale: str) -> str:
    """One line per reproduction counting every verdict kind."""
    lines = [f"# Reproduction summary ({scale} scale)", "",
             "| paper | status | " + " | ".join(VERDICTS) + " | folder |",
             "|---|---|" + "---|" * len(VERDICTS) + "---|"]
    for o in outcomes:
        counts = [sum(r["verdict"] == v for r in o.table or []) for v in VERDICTS]
        lines.append(f"| {o.name} | {o.status} | " + " | ".join(map(str, counts)) + f" | {o.run_dir} |")
    return "\n".join(lines) + "\n"


_COMMANDS = {"list": lambda a: _cmd_list(a.tag), "show": _cmd_show, "run": _cmd_run, "reproduce": _cmd_reproduce,
             "rerun": _cmd_rerun}


def _terminate(signum, frame):
    # SIGTERM (a scheduler's or `timeout`'s stop) is handled like Ctrl-C: the run writes status "interrupted"
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        discover()
        return _COMMANDS[args.command](args)
    except RunInterrupted as err:
        print(f"\n{err}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (KeyError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
