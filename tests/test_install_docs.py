# Copyright (c) OpenMMLab. All rights reserved.
"""The optional features install with one command, the same everywhere."""
import os.path as osp
import re

from tool_runs import REPO

DOCS = ('README.md', 'docs/visualization.md', 'docs/inference.md',
        'docs/deployment.md')
# Ways of installing an optional package by hand that `make extras` replaces
HAND_INSTALLS = re.compile(
    r'pip install[^\n`]*(grad-cam|facenet-pytorch|onnxruntime|onnxscript|'
    r'scikit-image|ttach)')


def read(path):
    with open(osp.join(REPO, path)) as f:
        return f.read()


def make_recipe(target):
    """The commands of a Makefile rule, by the target's stamp name."""
    text = read('Makefile')
    rule = re.search(rf'^\$\({target}\):[^\n]*\n((?:\t[^\n]*\n)+)', text,
                     re.M)
    assert rule, f'no rule for $({target}) in the Makefile'
    return [line.strip() for line in rule.group(1).splitlines()]


def test_make_extras_installs_the_two_lists():
    assert make_recipe('EXTRAS_STAMP')[:2] == [
        '$(PIP) install -r requirements/optional.txt',
        '$(PIP) install --no-deps -r requirements/nodeps.txt',
    ]
    # the tests run on what `make extras` installs
    assert re.search(r'^\$\(TEST_STAMP\): \$\(EXTRAS_STAMP\)',
                     read('Makefile'), re.M)


def test_docs_give_make_extras_and_no_other_install_line():
    for doc in DOCS:
        text = read(doc)
        assert 'make extras' in text, doc
        hand = HAND_INSTALLS.search(text)
        assert hand is None, f'{doc}: {hand.group(0)}'


def test_nodeps_list_holds_the_conflicting_packages_only():
    names = [
        re.split(r'[<>=]', line)[0]
        for line in read('requirements/nodeps.txt').splitlines()
        if line and not line.startswith('#')
    ]
    assert names == ['grad-cam', 'facenet-pytorch']
    optional = read('requirements/optional.txt')
    assert not re.search(r'^(grad-cam|facenet-pytorch)', optional, re.M)
