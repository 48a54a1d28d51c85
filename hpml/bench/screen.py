"""The answer on one screen at the end of ``pytest benchmarks``: per phase, paired speedups with their
interval (``~`` not significant, ``·`` not run, ``!`` busy; ``benchmarks/README.md``).  No torch; it also
decides ``speedup_significant`` (:func:`finalize`).  ``python -m hpml.bench.screen RUN.json`` for a stored run."""

from __future__ import annotations

import textwrap
from typing import Any, Callable, Iterable

from hpml.bench.idle import describe as describe_idle
from hpml.bench.pairing import PairedResult, is_significant, noise_floor
from hpml.results.between_run import describe as describe_intervals
from hpml.results.phase_names import screen_rank

#: Column headers of the datasets (short, so a block fits 100 columns).
SHORT = {"cifar10": "c10", "cifar100": "c100", "imagenet": "inet", "amazon_polarity": "amz2",
         "amazon_full": "amz5", "digits": "digits"}
CELL = 18  # characters per cell: " 18.44x[16.9,20.0]" plus a busy mark


#: A row's control: (extra_info key, the floor's key suffix, what older runs paired).
CONTROLS = (("aa_control", "", "A/A: one baseline paired with itself"),
            ("fresh_control", " (fresh)", "two fresh baseline processes"))


def _result(info: dict[str, Any], key: str = "speedup") -> PairedResult | None:
    if key != "speedup":
        aa = info.get(key)
        if not isinstance(aa, dict) or not aa.get("speedup"):
            return None
        interval = aa.get("interval")
        return PairedResult(float(aa["speedup"]), tuple(interval) if interval else None, int(aa.get("pairs") or 0))
    estimate, interval = info.get("speedup_vs_baseline"), info.get("speedup_interval")
    if not isinstance(estimate, (int, float)) or not interval:
        return None
    return PairedResult(float(estimate), (float(interval[0]), float(interval[1])), int(info.get("speedup_pairs") or 0))


def floors(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each phase's noise floor from its rows' controls; fresh-vs-fresh ones under ``"<phase> (fresh)"``."""
    controls: dict[str, list[PairedResult]] = {}
    kinds: dict[str, str] = {}
    for info in rows:
        for key, suffix, what in CONTROLS:
            aa = _result(info, key)
            if aa is not None:
                name = f"{info.get('phase')}{suffix}"
                controls.setdefault(name, []).append(aa)
                kinds[name] = str(info[key].get("sides") or what)
    out = {}
    for phase, results in controls.items():
        floor = noise_floor(results)
        if floor is not None:
            entry = floor.as_dict()
            entry["controls"] = len(results)
            entry["controls_holding_1"] = sum(r.contains(1.0) for r in results)
            entry["control"] = kinds[phase]
            out[phase] = entry
    return out


def _self_compared(info: dict[str, Any]) -> bool:
    """A baseline row paired with a second baseline (not with a ``reference``)."""
    return info.get("optimization") == "baseline" and not info.get("reference")


def held_to(info: dict[str, Any], floors_by_phase: dict[str, dict[str, Any]]) -> str | None:
    """The floor a row is held to: its phase's fresh-vs-fresh control for fresh rows where one ran, else the A/A."""
    phase = str(info.get("phase"))
    if info.get("fresh_process") and f"{phase} (fresh)" in floors_by_phase:
        return f"{phase} (fresh)"
    return phase if phase in floors_by_phase else None


def finalize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Set every paired row's ``speedup_significant`` against its floor (:func:`held_to`); return the floors."""
    result = floors(rows)
    for info in rows:
        paired = _result(info)
        if paired is None or _self_compared(info):
            continue
        name = held_to(info, result)
        floor = result[name]["interval"] if name else None
        info["speedup_significant"] = is_significant(paired, tuple(floor) if floor else None)
        info["noise_floor"] = floor
        info["noise_floor_control"] = f"{name}: {result[name]['control']}" if name else None
    return result


#: Past the widest table (122): five busy-marked ddp cells stay on one line, a busy screen fits 40 lines.
WRAP = 132
#: Phases whose workloads each read on a line of their own (few optimizations, unpaired or against a reference).
PER_WORKLOAD_PHASES = frozenset({"ddp", "overhead"})


def _num(value: float) -> str:
    """Three significant figures at most past 10 (``18.4``), two decimals below."""
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def cell(info: dict[str, Any] | None) -> str:
    if info is None:
        return "·"
    mark = "!" if info.get("busy") else ""
    paired = _result(info)
    if paired is None:
        speedup = info.get("speedup_vs_baseline")
        text = "-" if not isinstance(speedup, (int, float)) else f"{speedup:.2f}x?"
    elif not info.get("speedup_significant"):
        text = "~"
    else:
        lo, hi = paired.interval  # type: ignore[misc]
        text = f"{_num(paired.estimate)}x[{_num(lo)},{_num(hi)}]"
    return text + mark


def _column(info: dict[str, Any]) -> str:
    base = str(info.get("dataset") or "?").removesuffix("-synthetic")
    name = SHORT.get(base, base[:6])
    return name if info.get("device") in (None, "cpu") else f"{name}:{str(info.get('device'))[:4]}"


def _row_label(info: dict[str, Any], with_model: bool = False) -> str:
    """The optimization, its optimizer when not SGD, "(twin)" on synthetic data, the model when several ran."""
    name = str(info.get("optimization"))
    if with_model and info.get("model"):
        name = f"{info['model']} {name}"
    optimizer = info.get("optimizer")
    if optimizer and optimizer != "sgd":
        name = f"{name}/{optimizer}"
    if str(info.get("dataset") or "").endswith("-synthetic"):
        name = f"{name} (twin)"
    return name


def _by_phase(rows: list[dict[str, Any]], key: str, label: Callable[[dict[str, Any], str], str]) -> dict[str, set[str]]:
    """The rows' ``key`` lists of datasets (twins measured once, datasets a row stands for), as
    ``label(row, "c10, c100")`` -> the phases where it holds."""
    out: dict[str, set[str]] = {}
    for info in rows:
        others = info.get(key) or []
        if others:
            names = ", ".join(_column({**info, "dataset": d}) for d in others)
            out.setdefault(label(info, names), set()).add(str(info.get("phase")))
    return out


def _footer(title: str, groups: dict[str, set[str]]) -> list[str]:
    """``title: a (phases); b (phases)``, wrapped at 100 columns; nothing without groups."""
    if not groups:
        return []
    return textwrap.wrap(title + ": " + "; ".join(f"{g} ({', '.join(sorted(ph, key=screen_rank))})"
                                                  for g, ph in groups.items()),
                         width=WRAP, subsequent_indent="  ", break_on_hyphens=False)


def _wrap_items(prefix: str, items: list[str]) -> list[str]:
    """``prefix`` and ``items`` comma-separated, wrapped between items only."""
    text = prefix + ", ".join(item.replace(" ", "\0") for item in items)
    return [line.replace("\0", " ") for line in textwrap.wrap(
        text, width=WRAP, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)]


def busy_rows(rows: Iterable[dict[str, Any]]) -> int:
    """How many rows were measured on a busy machine (the warning's count)."""
    return sum(1 for info in rows if info.get("busy"))


def render(rows: list[dict[str, Any]], floors_by_phase: dict[str, dict[str, Any]], busy_rows: int,
           idle: dict[str, Any] | None = None) -> list[str]:
    """The compact matrix, the noise floors, the idle CPUs' state and the busy warning, as lines."""
    lines = ["hpml: paired speedup over each group's baseline (x[lo,hi]: its 95% interval; ~ not significant, "
             "x? unpaired, · not run, ! busy machine)"]
    by_phase: dict[str, list[dict[str, Any]]] = {}
    for info in rows:
        if _self_compared(info) or info.get("phase") is None:
            continue
        by_phase.setdefault(str(info["phase"]), []).append(info)
    # several models on one dataset (--hpml-models): each row names its model, or cells would collide
    several = {phase: len({(_column(i), i.get("model")) for i in infos}) > len({_column(i) for i in infos})
               for phase, infos in by_phase.items()}
    width = max([len(_row_label(i, several[p])) + 2 for p, infos in by_phase.items() for i in infos]
                + [len(p) for p in by_phase], default=0)
    for phase in sorted(by_phase, key=screen_rank):
        infos = by_phase[phase]
        columns = list(dict.fromkeys(_column(i) for i in infos))
        labels = list(dict.fromkeys(_row_label(i, several[phase]) for i in infos))
        cells = {(_row_label(i, several[phase]), _column(i)): i for i in infos}
        if len(columns) == 1 or phase in PER_WORKLOAD_PHASES:
            lines.extend(line for column in columns for line in _wrap_items(
                f"{phase} ({column}): ", [f"{label} {cell(cells[(label, column)])}" for label in labels
                                          if (label, column) in cells]))
            continue
        lines.append(f"{phase:<{width}}" + "".join(f"{c:>{CELL}}" for c in columns))
        for label in labels:
            lines.append(f"  {label:<{width - 2}}" + "".join(f"{cell(cells.get((label, c))):>{CELL}}" for c in columns))
    twins = _by_phase(rows, "dataset_aliases", lambda info, others: f"{others} = {_column(info)}")
    lines.extend(_footer("measured once, same work (the skipped rows' reasons say why)", twins))
    stands = _by_phase(rows, "stands_for", lambda info, others: f"{_column(info)} for {others}")
    lines.extend(_footer("one dataset per kind of data (skip reasons say why)", stands))
    if floors_by_phase:
        parts = []
        for phase, f in floors_by_phase.items():
            if phase.endswith(" (fresh)"):
                continue
            lo, hi = f["interval"]
            fresh = floors_by_phase.get(f"{phase} (fresh)")
            parts.append(f"{phase} {lo:.2f}-{hi:.2f}" + (" (fresh {:.2f}-{:.2f})".format(*fresh["interval"]) if fresh else ""))
        parts += ["{} {:.2f}-{:.2f}".format(p, *f["interval"]) for p, f in floors_by_phase.items()
                  if p.endswith(" (fresh)") and p.removesuffix(" (fresh)") not in floors_by_phase]
        lines.extend(_wrap_items("noise floor: ", parts))
    else:
        lines.append("noise floor: not measured (no paired baseline row ran)")
    intervals = describe_intervals(rows)
    if intervals:
        lines.extend(textwrap.wrap(intervals, width=WRAP, subsequent_indent="  ", break_on_hyphens=False))
    idle_line = describe_idle(idle)
    if idle_line:
        lines.extend(textwrap.wrap(idle_line, width=WRAP, subsequent_indent="  ", break_on_hyphens=False))
    if busy_rows:
        lines.append(f"WARNING: {busy_rows} rows measured on a busy machine: their numbers are unreliable "
                     "(extra_info busy_reason says what else ran)")
    return lines


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    from pathlib import Path

    from hpml.errors import HpmlError
    from hpml.results.machine_facts import machine_facts
    from hpml.results.runfiles import HOW_TO_RUN, read_json

    parser = argparse.ArgumentParser(prog="python -m hpml.bench.screen", description="The one-screen answer of a stored run.")
    parser.add_argument("run", type=Path, help="a pytest-benchmark JSON file of hpml rows")
    args = parser.parse_args(argv)
    try:
        data = read_json(args.run, "pytest-benchmark run file", HOW_TO_RUN)
        benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
        if not isinstance(benchmarks, list):
            raise HpmlError(f"{args.run}: not a pytest-benchmark run (no 'benchmarks' list)")
        # the screen needs only each row's extra_info, not its timings
        rows = [info for b in benchmarks if isinstance(b, dict) and "phase" in (info := b.get("extra_info") or {})]
        if not rows:
            raise HpmlError(f"{args.run}: holds no hpml benchmark rows")
    except HpmlError as err:
        print(f"hpml.bench.screen: {err}", file=sys.stderr)
        return 2
    machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    print("\n".join(render(rows, finalize(rows), busy_rows(rows), machine_facts(machine)["cpu_idle"])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
