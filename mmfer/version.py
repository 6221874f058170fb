# Copyright (c) OpenMMLab. All rights reserved.
__version__ = '0.1.0'


def parse_version_info(version_str: str) -> tuple:
    """Parse a version string such as ``'0.1.0'`` into a tuple of ints.

    Args:
        version_str (str): The version string.

    Returns:
        tuple: The version as ``(major, minor, patch)``.
    """
    return tuple(int(x) for x in version_str.split('.')[:3])


version_info = parse_version_info(__version__)
