"""``hpml`` command line: ``train``, ``info``, ``report`` and ``gate``.

Bad input prints one line and exits 2; a run that fails (divergence, out of memory)
prints one line and exits 1.  Never a traceback for either.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Callable, Sequence

from hpml import argtypes
from hpml.environment import check_environment
from hpml.errors import HpmlError, RunFailed, is_out_of_memory, one_line_message
from hpml.gate import add_gate_arguments, run_gate
from hpml.gate.bisect import add_bisect_arguments, run_bisect
from hpml.history import add_history_arguments, run_history
from hpml.report import add_report_arguments, run_report

#: The seed project's scripts as presets: baseline_model.py / optimized_model.py.
PRESETS: dict[str, dict] = {
    "baseline": dict(model="resnet50", dataset="cifar10", optimizations=()),
    "optimized": dict(model="resnet50", dataset="cifar10", optimizations=("optimized",)),
}


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage on error; hpml prints one line (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), help="seed-project preset (model, dataset, optimizations)")
    p.add_argument("--model", type=argtypes.text,
                   help="model name (default: the dataset's model, resnet50 for images)")
    p.add_argument("--dataset", type=argtypes.text,
                   help="dataset name (default: cifar10, or amazon_polarity for xlnet)")
    p.add_argument("--device", type=argtypes.text, default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--opt", type=_csv, default=None, help="comma-separated optimizations, e.g. amp,channels_last")
    p.add_argument("--optimizer", type=argtypes.text, default="sgd", help="sgd, adam or adamw")
    # Defaults of None: filled by config_from_args from the dataset's measured recipe (digits)
    # or from GENERIC_DEFAULTS.
    p.add_argument("--lr", type=float, help="learning rate (default: the digits recipe's; elsewhere 0.1 per 128 "
                   "samples for SGD, 1e-3 for Adam)")
    p.add_argument("--schedule", type=argtypes.text,
                   help="constant, cosine or onecycle (default: the digits recipe's; else constant)")
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--weight-decay", type=float)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, default=1)
    length.add_argument("--steps", type=int, help="optimizer steps to run instead of whole epochs")
    p.add_argument("--batch-size", type=int, help="samples per micro-batch (default: the digits recipe's; else 32)")
    p.add_argument("--accum-steps", type=int, default=4, help="micro-batches per step with --opt grad_accum")
    p.add_argument("--workers", type=int, default=2, help="loader processes with --opt workers")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=argtypes.text, default=os.environ.get("HPML_DATA_DIR") or None,
                   help="real-format datasets (default: $HPML_DATA_DIR; none: synthetic twins)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic twin even with a data dir")
    p.add_argument("--model-preset", type=argtypes.text,
                   help="text model size: tiny, base (default) or large (xlnet); tiny shrinks any hf: model")
    p.add_argument("--image-size", type=int, help="px side (default: the digits recipe's; else the dataset's)")
    p.add_argument("--seq-len", type=int)
    p.add_argument("--train-size", type=int, help="use only this many training samples")
    p.add_argument("--test-size", type=int, help="evaluate on this many test samples "
                   "(default with --steps: steps x batch size)")
    p.add_argument("--weights", type=argtypes.text,
                   help="local pretrained weights (file or directory); never downloaded")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation")
    p.add_argument("--json", dest="json_path", type=argtypes.text, help="write the run record (JSON) here")
    p.add_argument("--log", dest="log_path", type=argtypes.text, help="append per-epoch metrics (JSON lines) here")
    p.add_argument("--checkpoint-dir", type=argtypes.text, help="write last.ckpt here after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir/last.ckpt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--nproc", type=int, default=1, help="local data-parallel processes (DDP)")


#: What ``hpml train`` uses for a setting the user leaves out, where no recipe applies.
GENERIC_DEFAULTS = dict(batch_size=32, lr=None, schedule="constant", warmup_epochs=0.0, label_smoothing=0.0,
                        weight_decay=5e-4, image_size=None)


def training_defaults(dataset: str, model: str) -> tuple[dict, str | None]:
    """(defaults for the settings of :data:`GENERIC_DEFAULTS`, the recipe they come from or None).

    On ``digits`` (the real dataset every machine has) the defaults are its measured CPU
    recipe, so ``hpml train --dataset digits --model M --epochs 3`` reaches the digits
    target with any image model (:func:`hpml.convergence.recipes.training_defaults`)."""
    from hpml.convergence.recipes import DIGITS, training_defaults as recipe_for

    recipe = recipe_for(dataset, model)
    if recipe is None:
        return dict(GENERIC_DEFAULTS), None
    name = "DIGITS" if recipe is DIGITS else "DIGITS_32"
    return {key: getattr(recipe, key) for key in GENERIC_DEFAULTS}, f"{dataset} recipe {name}"


def config_from_args(args: argparse.Namespace):
    from hpml.train.run_config import RunConfig
    from hpml.data import dataset_info, list_datasets

    preset = PRESETS.get(args.preset or "", {})
    model, dataset = args.model or preset.get("model"), args.dataset or preset.get("dataset")
    if dataset is None:
        dataset = "amazon_polarity" if model == "xlnet" else "cifar10"
    if model is None:
        model = dataset_info(dataset).model
    optimizations = args.opt if args.opt is not None else preset.get("optimizations", ())
    defaults, source = training_defaults(dataset, model)
    settings = {key: default if getattr(args, key) is None else getattr(args, key) for key, default in defaults.items()}
    if args.lr is None and args.optimizer != "sgd":
        settings["lr"] = None  # a recipe's lr is an SGD one; Adam keeps DEFAULT_LR
    used = [key for key in defaults if getattr(args, key) is None and settings[key] is not None]
    if source and used:
        # stdout, with the run's summary: stderr holds only the one line of an error
        print(f"hpml: defaults from the {source}: " + ", ".join(f"{k}={settings[k]}" for k in used))
    test_size = args.test_size
    if test_size is None and args.steps is not None and dataset in list_datasets():
        # a --steps run is a quick look, not a full evaluation: steps x batch samples, at
        # most the whole test split (digits has 360)
        test_size = min(args.steps * settings["batch_size"], dataset_info(dataset).test_size)
    return RunConfig(
        model=model, dataset=dataset, device=args.device, optimizer=args.optimizer, **settings,
        epochs=args.epochs, steps=args.steps, seed=args.seed, optimizations=tuple(optimizations),
        accum_steps=args.accum_steps, num_workers=args.workers, model_preset=args.model_preset,
        seq_len=args.seq_len, train_size=args.train_size,
        test_size=test_size, data_dir=args.data_dir, synthetic=True if args.synthetic else None,
        weights=args.weights, evaluate=not args.no_eval,
    )


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable outputs before training, not after the run they would record."""
    from hpml.files import check_writable_dir, check_writable_file
    from hpml.train.checkpoint import CHECKPOINT_NAME

    if "WORLD_SIZE" in os.environ and os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 alone writes (on its own node's filesystem); a stray RANK is no launcher
    if args.json_path is not None:
        check_writable_file(args.json_path, "--json")
    if args.log_path is not None:
        check_writable_file(args.log_path, "--log")
    if args.checkpoint_dir is not None:
        check_writable_dir(args.checkpoint_dir, "--checkpoint-dir")
        check_writable_file(os.path.join(args.checkpoint_dir, CHECKPOINT_NAME), "--checkpoint-dir")


def check_resume(args: argparse.Namespace, cfg) -> None:
    """Read the checkpoint before anything is built: one that would run code, is not
    hpml's, or was written by another model/dataset/optimizer/seed is refused up front
    (the ranks of a distributed run read it again, and check it again)."""
    from hpml.train.checkpoint import CHECKPOINT_NAME, check_resume_config, read_checkpoint

    if not args.resume:
        return
    if not args.checkpoint_dir:
        raise HpmlError("--resume needs --checkpoint-dir")
    path = os.path.join(args.checkpoint_dir, CHECKPOINT_NAME)
    check_resume_config(path, read_checkpoint(path).get("config"), cfg)


def cmd_train(args: argparse.Namespace) -> int:
    from hpml.train.run import run, summary_lines

    if args.nproc < 1:
        raise HpmlError(f"--nproc must be >= 1 (processes), got {args.nproc}")
    cfg = config_from_args(args)
    cfg.check_fits_in_memory()
    check_outputs(args)
    check_resume(args, cfg)
    options = dict(json_path=args.json_path, log_path=args.log_path, checkpoint_dir=args.checkpoint_dir,
                   resume=args.resume, progress=not args.no_progress)
    if args.nproc > 1 or "WORLD_SIZE" in os.environ:
        from hpml.distributed import launch_run

        record = launch_run(cfg, nproc=args.nproc, **options)
    else:
        record = run(cfg, **options)
    if record is None:  # ranks other than 0
        return 0
    print("\n".join(summary_lines(record)))
    failures = record.get("output_errors") or []
    if failures:
        # the run itself finished: its summary is above; what it could not save is here
        print(f"hpml: run failed: {'; '.join(failures)}", file=sys.stderr)
        return 1
    if args.json_path:
        print(f"  record written to {args.json_path}")
    return 0


def wakeup_line() -> str:
    """What waking another CPU costs here, as the OS leaves idle CPUs and as ``pytest
    benchmarks`` measures (idle CPUs kept awake where it may: :mod:`hpml.bench.idle`)."""
    from hpml.bench.idle import cross_cpu_roundtrip_us, idle_cpus

    asleep = cross_cpu_roundtrip_us()
    if asleep is None:
        return "one CPU: nothing to wake"
    with idle_cpus("awake") as state:
        if not state.held:
            awake = f"benchmarks cannot keep them awake here ({state.detail})"
        elif state.wakeup_us is None:
            awake = "kept awake as pytest benchmarks measures, but the probe could not run"
        else:
            awake = f"{state.wakeup_us:.1f} us kept awake, as pytest benchmarks measures"
    return f"cross-CPU round trip {asleep:.1f} us as the OS leaves idle CPUs; {awake}"


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from hpml.data import list_datasets
    from hpml.machine import machine_info
    from hpml.measure import measured_peak_flops
    from hpml.models import list_models
    from hpml.train.optimizations import list_optimizations

    info = machine_info()
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    print(f"{'models':<{width}}  {', '.join(list_models())}")
    print(f"{'datasets':<{width}}  {', '.join(list_datasets())}")
    print(f"{'optimizations':<{width}}  {', '.join(list_optimizations())}")
    print(f"{'cpu wake-up':<{width}}  {wakeup_line()}")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            if device == "cpu" and dtype == torch.float16:
                continue  # not a training path on CPU
            flops = measured_peak_flops(device, dtype, refresh=args.refresh)
            print(f"peak {device} {str(dtype).removeprefix('torch.'):<9} {flops / 1e9:10.1f} GFLOP/s (matmul probe)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from hpml.results.between_run import RULE, calibrate

    path, spreads, pairs = calibrate(args.runs)
    print(f"between-run spread (log sd) from {pairs} pair(s) of runs, stored in {path}")
    print(f"rule: {RULE}:")
    for group, entry in spreads.items():
        kinds = entry.get("kinds") or {}
        print(f"  {group:<26} {entry['sd']:.4f}  ({entry['rows']} rows)")
        if list(kinds) != [group]:
            print("    " + "; ".join(f"{kind} {rows}" for kind, rows in kinds.items()))
    print("later runs on this machine widen those rows' intervals, and their controls', by it; other kinds stay within-run")
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hpml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    train = sub.add_parser("train", help="train a model and measure every phase")
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)
    info = sub.add_parser("info", help="devices, versions, measured peak FLOP/s and what waking another CPU costs")
    info.add_argument("--refresh", action="store_true", help="probe the peaks again (the cache keeps the highest value measured)")
    info.set_defaults(func=cmd_info)
    report = sub.add_parser("report", help="write the benchmark report (Markdown, HTML, charts)")
    add_report_arguments(report)
    report.set_defaults(func=run_report)
    calibrate = sub.add_parser("calibrate", help="store this machine's run-to-run spread per kind of benchmark row, "
                               "from stored runs of one commit, so later runs' intervals cover the next run")
    calibrate.add_argument("runs", nargs="+", type=Path, metavar="RUN.json",
                           help="pytest-benchmark JSON files of runs of one commit on this machine, in the order they ran")
    calibrate.set_defaults(func=cmd_calibrate)
    gate = sub.add_parser("gate", help="fail on a real performance regression")
    add_gate_arguments(gate)
    gate.set_defaults(func=run_gate)
    history = sub.add_parser("history", help="steps in each row's time across the stored runs of one machine")
    add_history_arguments(history)
    history.set_defaults(func=run_history)
    bisect = sub.add_parser("bisect", help="find the first commit where a row became slower (paired gate probes)")
    add_bisect_arguments(bisect)
    bisect.set_defaults(func=run_bisect)
    return parser


class Terminated(BaseException):
    """SIGTERM (a scheduler's or torchrun's stop) raised in the main thread, so that
    ``finally`` blocks run (ranks stopped, temporary folders removed) before exit 143."""


def _on_sigterm(main_pid: int):
    def handler(signum, frame) -> None:
        if os.getpid() != main_pid:  # a forked loader worker inherited this handler
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    return handler


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library's warning as one line on stdout, with the run's output: stderr holds only
    the one line of an error (Python's own format adds the source line)."""
    text = (str(message).strip().splitlines() or [""])[0]
    print(f"hpml: warning: {category.__name__}: {text}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command that reproduces a verdict
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm(os.getpid())) if in_main_thread else None
    # only training has checkpoints to speak of
    kept = " (the last epoch checkpoint, if any, is intact)" if args.command == "train" else ""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            check_environment()
            return args.func(args)
    except HpmlError as exc:
        print(f"hpml: error: {one_line_message(exc)}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"hpml: run failed: {one_line_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpml: interrupted{kept}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"hpml: terminated by SIGTERM{kept}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise  # a bug: the traceback is the useful report
        print(f"hpml: run failed: out of memory: {one_line_message(exc)}; use a smaller --batch-size "
              "or --image-size", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
