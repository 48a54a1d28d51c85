"""``hpml gate --markdown FILE``: the verdict as GitHub Markdown, flagged rows first, the rest folded."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Sequence

from hpml.gate.checks import FASTER, MISSING, SLOWER, WORSE, Check
from hpml.results.markdown import details, escape, table

#: Rows shown outside the folded block; with the header lines the visible part stays under 60 lines.
MAX_SHOWN = 25
FLAGGED = (SLOWER, WORSE, MISSING, FASTER)


@dataclass
class Facts:
    """What the Markdown says besides the checks (filled by the gate's mode)."""

    machine: str = "?"
    commits: str = "?"
    noise_floor: str = ""
    notes: list[str] = field(default_factory=list)


def change(c: Check) -> str:
    """``time +12.3% [+8.0%, +16.9%]`` for A/B rows (ratio is speed, so time = 1/ratio); ``x0.93 [..]`` else."""
    if c.ratio is None:
        return "-"
    if c.kind.startswith("A/B"):
        text = f"time {1 / c.ratio - 1:+.1%}"
        if c.ci is not None:
            text += f" [{1 / c.ci[1] - 1:+.1%}, {1 / c.ci[0] - 1:+.1%}]"
        return text
    text = f"{escape(c.kind)} x{c.ratio:.3f}"
    if c.ci is not None:
        text += f" [{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
    return text


def _row(c: Check) -> list[str]:
    p = "-" if c.p is None else f"{c.p:.2g}"
    verdict = f"**{c.verdict}**" if c.verdict in FLAGGED else escape(c.verdict)
    return [escape(c.case), change(c), p, verdict]


def render(checks: Sequence[Check], failed: Sequence[Check], header: Sequence[str], facts: Facts,
           argv: Sequence[str]) -> str:
    """The whole Markdown document."""
    ordered = sorted(checks, key=lambda c: (FLAGGED.index(c.verdict) if c.verdict in FLAGGED else len(FLAGGED)))
    flagged = [c for c in ordered if c.verdict in FLAGGED]
    if failed:
        names = list(dict.fromkeys(c.case for c in failed))
        answer = (f"**hpml gate: FAIL** — {len(failed)} of {len(checks)} check(s) failed: "
                  + ", ".join(escape(n) for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else ""))
    else:
        answer = f"**hpml gate: OK** — {len(checks)} check(s), none failed" + (
            f" ({len(flagged)} flagged but not failing)" if flagged else "")
    lines = ["## hpml gate", "", answer, ""]
    columns = ["row", "change [95% interval]", "p", "verdict"]
    shown, rest = ordered[:MAX_SHOWN], ordered[MAX_SHOWN:]
    lines += table(columns, [_row(c) for c in shown], numeric={2})
    if rest:
        lines += [""] + details(f"{len(rest)} more row(s)", table(columns, [_row(c) for c in rest], numeric={2}))
    lines += [""]
    if facts.noise_floor:
        lines.append(f"- noise floor: {facts.noise_floor}")
    lines += [f"- machine: {escape(facts.machine)}", f"- commits: {facts.commits}"]
    lines += [f"- {escape(note)}" for note in facts.notes]
    lines += ["", "Reproduce:", "", "```sh", "hpml " + shlex.join(argv).replace("`", "'"), "```"]
    lines += [""] + details("how the gate decided", [escape(line) + "  " for line in header])
    return "\n".join(lines) + "\n"
