# Copyright (c) OpenMMLab. All rights reserved.
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    with open(osp.join(HERE, 'mmfer', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def parse_requirements(fname: str) -> list:
    """Read requirement lines, skipping comments and ``-r`` includes."""
    with open(osp.join(HERE, fname)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


setup(
    name='mmfer',
    version=get_version(),
    description='OpenMMLab plugin for facial expression recognition '
    'under noisy labels (EAC, GSMC, ReSup, LA-Net)',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.9',
    license='Apache License 2.0',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'mim': parse_requirements('requirements/mminstall.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
        'optional': parse_requirements('requirements/optional.txt'),
    },
    zip_safe=False)
