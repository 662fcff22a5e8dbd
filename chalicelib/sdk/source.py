"""Where in a DAG file an object was created, so every problem can say file:line.

Objects are built deep inside SDK and operator code; the line a user wants to
see is the statement in *their* file. We walk the Python stack once per object
(a few frames, cheap even for 10,000 tasks) instead of asking users to pass it.
"""

from __future__ import annotations

import os
import sys
from types import FrameType

_SDK_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_DIR = os.path.dirname(os.path.dirname(_SDK_DIR))
_LIBRARY_PREFIXES = (_SDK_DIR + os.sep, os.path.join(_REPO_DIR, "operators") + os.sep)

Site = tuple[str | None, int | None]


def is_library_file(filename: str) -> bool:
    """True for files of the SDK and the operator library: never the user's statement."""
    return filename.startswith(_LIBRARY_PREFIXES)


def user_site(start: FrameType | None, preferred_file: str | None = None) -> Site:
    """The file and line of the user statement that led to ``start``.

    With ``preferred_file`` (a DAG's own file) the innermost frame in that file
    wins, so a task built by a helper module still points at the DAG file line
    that called the helper. Otherwise the innermost non-library frame wins.
    """
    frame = start
    first_outside: Site = (None, None)
    while frame is not None:
        filename = frame.f_code.co_filename
        if preferred_file is not None and filename == preferred_file:
            return filename, frame.f_lineno
        if first_outside[0] is None and not is_library_file(filename):
            first_outside = (filename, frame.f_lineno)
            if preferred_file is None:
                break
        frame = frame.f_back
    return first_outside


def caller_site(depth: int = 1, preferred_file: str | None = None) -> Site:
    """:func:`user_site` starting ``depth`` frames above the function calling this one."""
    return user_site(sys._getframe(depth + 1), preferred_file)


def display_path(path: str | None) -> str | None:
    """A path as users want to read it: relative to the working directory when inside it."""
    if path is None or not os.path.isabs(path):
        return path
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative
