"""The one exception type hpml raises for bad input, and the helpers that put any
error on one line.

Everything a user can get wrong (an unknown name, a missing or malformed dataset,
an impossible option) raises :class:`HpmlError` with a one-line message.  The CLI
turns it into that message on stderr and exit code 2; library users can catch it.
"""

import sys


class HpmlError(Exception):
    """Bad input: the message is one line and says what to do about it."""


class RunFailed(Exception):
    """A run that started but could not go on (divergence, out of memory).

    The message is one line naming where it failed (step, epoch, batch size) and what
    to try; the CLI prints it and exits 1.
    """


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's RuntimeError
    (``DefaultCPUAllocator: can't allocate memory``), which torch gives no type of its own.

    Torch-free: an exception can only be torch's OutOfMemoryError once torch is loaded, so
    a process that failed before loading it (or a rank reporting its error) imports nothing."""
    torch = sys.modules.get("torch")
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def squeezed_message(exc: BaseException, limit: int = 300) -> str:
    """All of ``exc``'s text on one line (whitespace collapsed), at most ``limit`` characters;
    its type name when it has no text.  For messages whose later lines matter (a corrupt
    file's reader), where :func:`one_line_message` would keep only the first."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def one_line_message(exc: BaseException) -> str:
    """``exc``'s message on one line.

    An exception raised in a DataLoader worker comes back re-raised with the worker's
    whole traceback in its message; the last line of that traceback is the original
    message, which is what the user needs."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Original Traceback" in text:
        original = lines[-1]
        for name in (f"{type(exc).__module__}.{type(exc).__qualname__}: ", f"{type(exc).__qualname__}: "):
            original = original.removeprefix(name)
        return f"{original} (in a data loader worker)"
    return lines[0]


def unpickling_reason(exc: BaseException) -> str:
    """Why a ``weights_only`` load failed, without torch's advice to retry with ``weights_only=False``
    (which would run the file's code): the unpickler's own words, e.g. "Unsupported operand 110"."""
    message, marker = str(exc), "WeightsUnpickler error:"
    if marker in message:
        return " ".join(message[message.index(marker) + len(marker):].split("Check the documentation")[0].split())
    return one_line_message(exc)


def refused_global(exc: BaseException) -> str | None:
    """The global a ``weights_only`` load refused (``Unsupported global: GLOBAL posix.system``),
    or None when ``exc`` is no such refusal (a corrupt file).  Callers quote this, never torch's
    message: it goes on to advise ``weights_only=False``, which would run the file's code."""
    message, marker = str(exc), "GLOBAL "
    if marker not in message:
        return None
    return message[message.index(marker) + len(marker):].split()[0].rstrip(".,;:")
