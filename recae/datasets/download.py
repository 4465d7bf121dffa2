"""Download, checksum and safely extract dataset archives (standard library + tqdm).

The network step (:func:`fetch`) is kept apart from the local steps
(:func:`verify_checksum`, :func:`safe_extract`) so the latter can be tested offline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from ..exceptions import DataError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_HEX = {"md5": 32, "sha256": 64}
_USER_AGENT = "recae-dataset-downloader"


# ----------------------------------------------------------------------------- checksums
def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or os.PathLike
    algorithm : {"md5", "sha256"} or any :mod:`hashlib` name

    Returns
    -------
    str
        Lower-case hexadecimal digest.
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _normalize_hex(value: str, algorithm: str) -> str:
    value = str(value).strip().lower()
    n = _HEX[algorithm]
    if not re.fullmatch(rf"[0-9a-f]{{{n}}}", value):
        raise DataError(f"{algorithm} checksum must be {n} hexadecimal digits; got {value!r}")
    return value


def verify_checksum(path, md5: str | None = None, sha256: str | None = None) -> None:
    """Check a file against an expected MD5 and/or SHA-256 digest.

    Parameters
    ----------
    path : str or os.PathLike
    md5, sha256 : str, optional
        Expected hexadecimal digests. Nothing is checked when both are ``None``.

    Raises
    ------
    DataError
        On a mismatch; the message names the file, the expected and the actual digest.
    """
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        expected = _normalize_hex(expected, algorithm)
        actual = file_digest(path, algorithm)
        if actual != expected:
            raise DataError(
                f"{algorithm} checksum mismatch for {os.fspath(path)!r}: expected {expected}, "
                f"got {actual}. The download is corrupt or incomplete (or the file was changed); "
                "delete it and download again."
            )
        logger.debug("%s %s verified for %s", algorithm, actual, path)


def parse_md5_file(text: str) -> str:
    """Extract the digest from an ``.md5`` file (BSD ``MD5 (f) = h`` or GNU ``h  f`` form)."""
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if m is None:
        raise DataError(f"no MD5 digest found in checksum file content {text[:200]!r}")
    return m.group(1).lower()


# ----------------------------------------------------------------------------- extraction
def _is_within(base: Path, target: Path) -> bool:
    try:
        target.relative_to(base)
        return True
    except ValueError:
        return False


def _check_member(base: Path, name: str, info: zipfile.ZipInfo) -> Path:
    if "\x00" in name:
        raise DataError(f"refusing to extract {name!r}: NUL byte in member name")
    norm = name.replace("\\", "/")
    pure = PurePosixPath(norm)
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or pure.is_absolute():
        raise DataError(f"refusing to extract {name!r}: absolute path in archive")
    if ".." in pure.parts:
        raise DataError(f"refusing to extract {name!r}: path escapes the destination directory")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataError(f"refusing to extract {name!r}: symbolic links are not allowed in archives")
    target = (base / norm).resolve()
    if not _is_within(base, target):
        raise DataError(f"refusing to extract {name!r}: path escapes the destination directory {base}")
    return target


def safe_extract(archive, dest_dir) -> list[Path]:
    """Extract a zip archive into ``dest_dir``, refusing members that would land outside it.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    drive letters and symbolic links raise :class:`~recae.exceptions.DataError`. Files are
    first extracted into a temporary folder inside ``dest_dir`` and then moved into place,
    so an interrupted extraction never leaves a half-written dataset file behind.

    Parameters
    ----------
    archive : str or os.PathLike
        Path to a ``.zip`` file.
    dest_dir : str or os.PathLike
        Destination directory (created when missing).

    Returns
    -------
    list of pathlib.Path
        The extracted files, in archive order.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    if not zipfile.is_zipfile(archive):
        raise DataError(f"{os.fspath(archive)!r} is not a zip archive (a partial download?); delete it, then place the "
                        "official archive there or download it again")
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        checked = [(info, _check_member(base, info.filename, info)) for info in infos]
        staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
        try:
            out = []
            for info, target in checked:
                rel = target.relative_to(base)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                tmp = staging / rel
                tmp.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a CRC or inflate failure: damaged bytes
                    raise DataError(f"{os.fspath(archive)!r} is damaged: {info.filename} does not extract "
                                    f"({type(exc).__name__}: {exc}); delete it, then place the official archive "
                                    "there or download it again") from None
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, target)
                out.append(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("extracted %d file(s) from %s into %s", len(out), archive, base)
    return out


# ----------------------------------------------------------------------------- network
def fetch(url: str, dest, *, timeout: float = 60.0, show_progress: bool = True) -> Path:
    """Download ``url`` to the file ``dest`` via a temporary file and an atomic rename.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL.
    dest : str or os.PathLike
        Final file path; its folder is created when missing.
    timeout : float, default 60
        Socket timeout in seconds.
    show_progress : bool, default True
        Show a :mod:`tqdm` progress bar (on stderr).

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    logger.info("downloading %s to %s", url, dest)
    try:
        req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with urllib.request.urlopen(req, timeout=timeout) as resp, os.fdopen(fd, "wb") as out:
            length = resp.headers.get("Content-Length") if resp.headers is not None else None
            total = int(length) if length and length.isdigit() else None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name,
                      disable=not show_progress, leave=False) as bar:
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
        if total is not None and tmp.stat().st_size != total:
            raise DataError(f"incomplete download of {url}: got {tmp.stat().st_size} of {total} bytes")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def fetch_text(url: str, *, timeout: float = 60.0) -> str:
    """Small text resource (e.g. a published ``.md5`` file) as a string."""
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read(1 << 16).decode("utf-8", errors="replace")


def download_and_extract(url: str, dest_dir, *, md5: str | None = None, sha256: str | None = None,
                         timeout: float = 60.0, show_progress: bool = True,
                         fetch_md5: bool = True, keep_archive: bool = False) -> Path:
    """Download a zip archive, verify it and extract it safely into ``dest_dir``.

    Parameters
    ----------
    url : str
        Archive URL (``http(s)://`` or ``file://``).
    dest_dir : str or os.PathLike
        Directory the archive is extracted into (created when missing).
    md5, sha256 : str, optional
        Expected digest(s) of the archive. When neither is given and ``fetch_md5`` is true,
        the digest published next to the archive (``<url>.md5``, as GroupLens does) is
        fetched and checked; when that file cannot be fetched a warning is logged and the
        archive is used unverified.
    timeout : float, default 60
        Socket timeout in seconds.
    show_progress : bool, default True
        Show a tqdm progress bar while downloading.
    fetch_md5 : bool, default True
        Whether to look for ``<url>.md5`` when no checksum is passed.
    keep_archive : bool, default False
        Keep the downloaded archive next to the extracted files.

    Returns
    -------
    pathlib.Path
        ``dest_dir``.

    Raises
    ------
    DataError
        Checksum mismatch, not a zip file, or an archive member escaping ``dest_dir``.
    urllib.error.URLError, OSError
        Network or file-system failures.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or "download.zip"
    if md5 is None and sha256 is None and fetch_md5:
        try:
            md5 = parse_md5_file(fetch_text(url + ".md5", timeout=timeout))
            logger.info("published md5 for %s: %s", name, md5)
        except (urllib.error.URLError, OSError, DataError) as exc:
            logger.warning("could not fetch the checksum %s.md5 (%s); %s will not be verified", url, exc, name)
    archive = dest / name
    fetch(url, archive, timeout=timeout, show_progress=show_progress)
    try:
        verify_checksum(archive, md5=md5, sha256=sha256)
        safe_extract(archive, dest)
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return dest
