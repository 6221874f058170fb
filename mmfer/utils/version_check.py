# Copyright (c) OpenMMLab. All rights reserved.
"""Check that the installed OpenMMLab stack is one mmfer runs on."""
from importlib import metadata
from typing import Dict, Optional, Tuple

from packaging.version import Version

# name -> (distribution names to look for, minimum inclusive, maximum
# exclusive, what to install when it does not fit). torch < 2.6 unpickles
# checkpoints fully by default, which mmfer promises not to do.
STACK: Dict[str, Tuple[Tuple[str, ...], str, str, str]] = {
    'torch': (('torch', ), '2.6.0', '3.0.0', 'torch==2.14.1'),
    'torchvision': (('torchvision', ), '0.15.0', '1.0.0',
                    'torchvision==0.29.1'),
    'mmengine': (('mmengine', ), '0.10.0', '1.0.0', 'mmengine==0.10.7'),
    'mmcv': (('mmcv', 'mmcv-lite'), '2.0.0', '2.4.0', 'mmcv-lite==2.2.0'),
    'mmpretrain': (('mmpretrain', ), '1.2.0', '1.3.0', 'mmpretrain==1.2.0'),
    'numpy': (('numpy', ), '1.23.0', '3.0.0', 'numpy>=2'),
}


def _installed_version(dists: Tuple[str, ...]) -> Optional[str]:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_stack() -> None:
    """Raise an ``ImportError`` naming every package that does not fit.

    Raises:
        ImportError: If a required package is missing or outside the range
            mmfer is tested with; the message gives the pip command to fix it.
    """
    problems = []
    for name, (dists, low, high, pin) in STACK.items():
        found = _installed_version(dists)
        if found is None:
            problems.append(f'{name} is not installed')
        elif not Version(low) <= Version(found) < Version(high):
            problems.append(f'{name} {found} is installed but mmfer needs '
                            f'{low} <= {name} < {high}')
        else:
            continue
        problems[-1] += f' (fix: pip install "{pin}")'
    if problems:
        raise ImportError(
            'mmfer cannot run on this environment:\n  - ' +
            '\n  - '.join(problems) +
            '\nThe tested stack is listed in requirements/runtime.txt and '
            'requirements/mminstall.txt; `make install` sets it up in .venv.')
