# Copyright (c) OpenMMLab. All rights reserved.
"""What mmfer logs through mmengine's current logger, for assertions."""
import logging
from contextlib import contextmanager
from typing import Iterator, List

from mmengine.logging import MMLogger


@contextmanager
def logged_messages() -> Iterator[List[str]]:
    """Collect the messages of the current MMLogger inside the block.

    Yields:
        list[str]: Filled with each message as it is logged.
    """
    messages: List[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
