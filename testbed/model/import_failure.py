"""What to tell a user whose topology (or scenario) file raised while it ran.

``import_problem(path, exc)`` turns the exception that running the file
raised into one problem line that starts with ``file:line`` of the
innermost line of that file in the traceback (for a ``SyntaxError``, the
line the parser stopped at), so a NameError on line 6 says line 6.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path


def failing_line(path: Path | str, exc: BaseException) -> int | None:
    """The innermost line of ``path`` in ``exc``'s traceback, or ``None``."""
    target = os.path.realpath(path)
    if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == target:
        return exc.lineno
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.realpath(frame.filename) == target:
            line = frame.lineno
    return line


def import_problem(path: Path | str, exc: BaseException) -> str:
    """``"<path>:<line>: importing it failed: NameError: ..."``."""
    line = failing_line(path, exc)
    where = f"{path}:{line}: " if line else f"{path}: "
    detail = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    return f"{where}importing it failed: {type(exc).__name__}: {detail}"
