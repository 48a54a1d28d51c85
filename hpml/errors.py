"""The one exception type hpml raises for bad input.

Everything a user can get wrong (an unknown name, a missing or malformed dataset,
an impossible option) raises :class:`HpmlError` with a one-line message.  The CLI
turns it into that message on stderr and exit code 2; library users can catch it.
"""


class HpmlError(Exception):
    """Bad input: the message is one line and says what to do about it."""


class RunFailed(Exception):
    """A run that started but could not go on (divergence, out of memory).

    The message is one line naming where it failed (step, epoch, batch size) and what
    to try; the CLI prints it and exits 1.
    """
