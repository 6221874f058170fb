# Copyright (c) OpenMMLab. All rights reserved.
"""Atomic file writing.

A process killed while it writes ``epoch_N.pth`` or ``last_checkpoint``
with a plain ``open(path, 'w')`` leaves a truncated file behind, because
``open`` truncates the target before the first byte is written. The helpers
here write to a temporary file in the target's directory, flush and fsync
it, and only then ``os.replace`` it onto the target. ``os.replace`` is
atomic on POSIX and Windows when both paths are on the same file system,
so readers see either the complete old file or the complete new one.
"""
import os
import os.path as osp
import secrets
import stat
from contextlib import contextmanager
from typing import IO, Any, Iterator, Optional, Union

PathLike = Union[str, 'os.PathLike[str]']

# Temporary files start with a dot and end with ``.tmp`` so that globs such
# as ``*.pth`` (used to find or clean up checkpoints) never match them.
_TMP_PREFIX = '.'
_TMP_SUFFIX = '.tmp'


def _resolve_target(path: PathLike) -> str:
    """Return the path to replace, following a symlink like ``open`` does.

    Args:
        path (str or PathLike): Path given by the caller.

    Returns:
        str: ``path`` itself, or the file a symlink at ``path`` points to,
        so that replacing it keeps the link instead of overwriting it.
    """
    path = os.fspath(path)
    if osp.islink(path):
        return osp.realpath(path)
    return path


def _open_temp(target: str, mode: str, **kwargs: Any) -> IO:
    """Create and open a new temporary file next to ``target``.

    ``tempfile.mkstemp`` is not used because it creates files with mode
    0600; a file created by ``open(..., 'x')`` gets the permissions the
    process umask allows, as the target would with a plain ``open``.

    Args:
        target (str): The file that will later be replaced.
        mode (str): The caller's write mode, e.g. ``'w'`` or ``'wb'``; it
            is turned into the matching exclusive-create mode.
        **kwargs: Passed to the builtin ``open`` (``encoding`` etc.).

    Returns:
        IO: The opened temporary file; its path is ``file.name``.
    """
    dirname, basename = osp.split(osp.abspath(target))
    excl_mode = 'x' + mode.replace('w', '').replace('x', '')
    while True:
        tmp_path = osp.join(
            dirname, f'{_TMP_PREFIX}{basename}.{secrets.token_hex(6)}'
            f'{_TMP_SUFFIX}')
        try:
            return open(tmp_path, excl_mode, **kwargs)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def _fsync_dir(dirname: str) -> None:
    """Make a rename in ``dirname`` durable (best effort, POSIX only).

    Args:
        dirname (str): Directory whose entry table changed.
    """
    if not hasattr(os, 'O_DIRECTORY'):
        return
    try:
        fd = os.open(dirname, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp_path: str, target: str) -> None:
    """Move a fully written and synced temporary file onto ``target``.

    Args:
        tmp_path (str): The closed temporary file.
        target (str): Destination; replaced atomically if it exists.
    """
    try:
        # Keep the permissions of a file being overwritten, as an in-place
        # ``open(path, 'w')`` would.
        os.chmod(tmp_path, stat.S_IMODE(os.stat(target).st_mode))
    except OSError:
        pass
    os.replace(tmp_path, target)
    _fsync_dir(osp.dirname(osp.abspath(target)))


def _discard(tmp_path: str) -> None:
    """Remove a temporary file, ignoring that it may already be gone.

    Args:
        tmp_path (str): The temporary file to remove.
    """
    try:
        os.remove(tmp_path)
    except FileNotFoundError:
        pass


class _AtomicWriter:
    """A file object that replaces its target only on a clean close.

    Attribute access (``write``, ``writelines``, ``tell``, ...) is forwarded
    to the underlying temporary file.

    Args:
        path (str or PathLike): The file to write.
        mode (str): ``'w'``, ``'wb'``, ``'x'``, ``'xb'`` (optionally with
            ``'t'``).
        **kwargs: Passed to the builtin ``open``.
    """

    def __init__(self, path: PathLike, mode: str, **kwargs: Any) -> None:
        # Set first: ``__del__`` runs even if ``__init__`` fails below.
        self._closed = True
        self._target = _resolve_target(path)
        if 'x' in mode and osp.lexists(self._target):
            raise FileExistsError(f'File exists: {self._target!r}')
        self._file = _open_temp(self._target, mode, **kwargs)
        self._closed = False

    @property
    def name(self) -> str:
        """str: The path that is written, not the temporary file."""
        return self._target

    @property
    def closed(self) -> bool:
        """bool: Whether the writer was committed or discarded."""
        return self._closed

    def __getattr__(self, item: str) -> Any:
        # Only called for names not found on the writer itself; the guard
        # avoids infinite recursion before ``_file`` exists.
        if item in ('_file', '_target'):
            raise AttributeError(item)
        return getattr(self._file, item)

    def close(self) -> None:
        """Flush, fsync and close the temporary file, then replace the
        target with it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            _commit(self._file.name, self._target)
        except BaseException:
            self._file.close()
            _discard(self._file.name)
            raise

    def discard(self) -> None:
        """Close and delete the temporary file; the target is untouched."""
        if self._closed:
            return
        self._closed = True
        self._file.close()
        _discard(self._file.name)

    def __enter__(self) -> '_AtomicWriter':
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        # Never commit a file nobody closed: it may be incomplete.
        if not getattr(self, '_closed', True):
            self.discard()


def atomic_open(path: PathLike,
                mode: str = 'r',
                *args: Any,
                **kwargs: Any) -> IO:
    """Open a file, writing atomically for ``'w'`` and ``'x'`` modes.

    A drop-in replacement for the builtin ``open``. For ``'w'``/``'x'``
    modes (text or binary) the data go to a temporary file in the same
    directory that replaces ``path`` only when the file is closed without
    an exception (leaving a ``with`` block normally or calling ``close()``).
    On an exception the temporary file is deleted and ``path`` keeps its
    old content. Every other mode (read, append and the ``'+'`` update
    modes, which need the file itself) and integer file descriptors go to
    the builtin ``open``.

    Args:
        path (str or PathLike): File to open.
        mode (str): Mode as for the builtin ``open``. Defaults to ``'r'``.
        *args: Further positional arguments of ``open`` (``buffering``,
            ``encoding``, ...).
        **kwargs: Further keyword arguments of ``open``.

    Returns:
        IO: A file object usable as a context manager.
    """
    if (('w' in mode or 'x' in mode) and '+' not in mode
            and not isinstance(path, int)):
        names = ('buffering', 'encoding', 'errors', 'newline', 'closefd',
                 'opener')
        if len(args) > len(names):
            raise TypeError(f'atomic_open() takes at most {len(names) + 2} '
                            f'positional arguments ({len(args) + 2} given)')
        kwargs.update(zip(names, args))
        return _AtomicWriter(path, mode, **kwargs)  # type: ignore
    return open(path, mode, *args, **kwargs)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Args:
        path (str or PathLike): Target file; its directory must exist.
        data (bytes): Content to write (any bytes-like object).
    """
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_text(path: PathLike,
                      text: str,
                      encoding: Optional[str] = 'utf-8') -> None:
    """Write ``text`` to ``path`` atomically.

    Args:
        path (str or PathLike): Target file; its directory must exist.
        text (str): Content to write.
        encoding (str, optional): Text encoding. Defaults to ``'utf-8'``.
    """
    with atomic_open(path, 'w', encoding=encoding) as f:
        f.write(text)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """A temporary path that replaces ``path`` when the block succeeds.

    For writers that take a file name rather than a file object (e.g.
    ``torch.onnx.export``, ``onnx.save``). The temporary file is created
    like :func:`atomic_open`'s, so the result gets the permissions the
    process umask allows (or those of the file it replaces), not
    ``tempfile.mkstemp``'s 0600.

    Args:
        path (str or PathLike): The file to write.

    Yields:
        str: The temporary file to write to; removed if the block raises.
    """
    target = _resolve_target(path)
    tmp = _open_temp(target, 'wb')
    tmp.close()
    try:
        yield tmp.name
        with open(tmp.name, 'rb+') as written:
            os.fsync(written.fileno())
        _commit(tmp.name, target)
    except BaseException:
        _discard(tmp.name)
        raise
