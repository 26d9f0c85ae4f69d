"""Writing files so that a crash, a full disk or a reader at the same moment never sees half of one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Union


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the data itself was fsynced
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, content: Union[str, bytes], mode: int = 0o644) -> None:
    """Write `content` to a temporary file beside `path`, fsync it, rename it over `path`, fsync
    the folder: readers see the old file or the new one, never a mix."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and not path.is_file():  # /dev/stdout, a named pipe: written through, not replaced
        with open(path, "wb") as fh:
            fh.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
