# Copyright (c) OpenMMLab. All rights reserved.
# ``compat`` is not re-exported here: it imports torch and mmengine, and
# ``mmfer/__init__.py`` imports this package before checking the stack.
from .atomic_io import (atomic_open, atomic_path, atomic_write_bytes,
                        atomic_write_text)

__all__ = [
    'atomic_open', 'atomic_path', 'atomic_write_bytes', 'atomic_write_text'
]
