# Copyright (c) OpenMMLab. All rights reserved.
"""End a command-line tool on a user's mistake with the message, last."""
import os
import sys
import traceback
from typing import Callable

#: Set to ``1`` for the whole traceback of a refused input.
DEBUG_ENV = 'MMFER_DEBUG'
# What mmfer raises for a user's input (a missing or mismatched file, a
# wrong value or key): its message says what to fix.
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError)


def run_tool(main: Callable[[], object]) -> int:
    """Run a tool's ``main``; on a user's mistake print its message last.

    A run prints the environment and the config (hundreds of lines) before
    it fails on, say, a checkpoint of another model; a traceback then hides
    the one line that says what to do. For the errors of
    :data:`USER_ERRORS` the traceback is left out (``MMFER_DEBUG=1`` keeps
    it) and the message is printed last, on its own; any other exception
    propagates with its traceback.

    Args:
        main (Callable): The tool's entry point.

    Returns:
        int: The exit status: 0, or 1 after a user's mistake.
    """
    try:
        main()
    except USER_ERRORS as err:
        if os.environ.get(DEBUG_ENV) == '1':
            traceback.print_exc()
        message = err.args[0] if isinstance(err, KeyError) and err.args \
            else str(err)
        print(
            f'\nerror ({type(err).__name__}): {message}\n(set '
            f'{DEBUG_ENV}=1 for the traceback)',
            file=sys.stderr)
        return 1
    return 0
