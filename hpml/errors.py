"""HpmlError, the one exception for bad input (one line, exit 2), RunFailed, and helpers that put any error on one line."""

import sys


class HpmlError(Exception):
    """Bad input: the message is one line and says what to do about it."""


class RunFailed(Exception):
    """A run that started but could not go on (divergence, out of memory): one line naming where and what to try; exit 1."""


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, MemoryError, or the CPU allocator's untyped RuntimeError; torch-free."""
    torch = sys.modules.get("torch")
    if isinstance(exc, MemoryError) or (torch is not None and isinstance(exc, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)


def squeezed_message(exc: BaseException, limit: int = 300) -> str:
    """All of ``exc``'s text on one line, at most ``limit`` characters (its type name when it has none)."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def one_line_message(exc: BaseException) -> str:
    """``exc``'s message on one line: a DataLoader worker's re-raised traceback is reduced to its last line."""
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
    """Why a ``weights_only`` load failed, in the unpickler's words, without torch's advice to allow code."""
    message, marker = str(exc), "WeightsUnpickler error:"
    if marker in message:
        return " ".join(message[message.index(marker) + len(marker):].split("Check the documentation")[0].split())
    return one_line_message(exc)


def refused_global(exc: BaseException) -> str | None:
    """The global a ``weights_only`` load refused, or None; callers quote this, never torch's advice to allow code."""
    message, marker = str(exc), "GLOBAL "
    if marker not in message:
        return None
    return message[message.index(marker) + len(marker):].split()[0].rstrip(".,;:")
