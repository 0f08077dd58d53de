"""Downloading into a cache (resumable, verified) and safe extraction of archive members."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from tqdm import tqdm

from cl_bench.errors import CLBenchError, DataError

TIMEOUT_S = 10.0  # connect and per-read socket timeout: offline fails fast, never hangs
ATTEMPTS = 3  # tries per download when the body ends early; each resumes the .part file
CHUNK = 1 << 20
PARALLEL = 8
USER_AGENT = "cl_bench-data-prepare"
HAND_COPY_HINT = "if it stays unreachable (offline?), copy the datasets into the data folder by hand"


class DownloadError(CLBenchError):
    """A download failed: unreachable, interrupted, or the file is not the published one."""


class _Interrupted(Exception):
    """The body ended before the announced size; the .part file keeps what arrived."""


@dataclass(frozen=True)
class Remote:
    """A file to download, with what its publisher states about it (any may be None)."""

    url: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(urllib.parse.urlparse(self.url).path).name


def default_cache_dir() -> Path:
    """``$CL_BENCH_CACHE/downloads``, else ``~/.cache/cl_bench/downloads``."""
    root = os.environ.get("CL_BENCH_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "cl_bench") / "downloads"


def download(remote: Remote, dest: Path, *, progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """``dest``, downloaded unless already there and valid: streamed into ``dest.part``
    (resumed with a Range request), checked, then renamed into place."""
    dest = Path(dest)
    if dest.is_file():
        if not _problem(remote, dest):
            return dest
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _fetch(remote, part, progress, timeout)
            break
        except _Interrupted as interrupted:
            if attempt == ATTEMPTS:
                raise DownloadError(f"{remote.url}: {interrupted}; run again to resume") from None
    problem = _problem(remote, part)
    if problem:
        part.unlink()
        raise DownloadError(f"{remote.url}: {problem}; the download was deleted")
    os.replace(part, dest)
    return dest


def download_many(jobs: list[tuple[Remote, Path]], *, progress: bool = True, desc: str = "files") -> None:
    """Download many small files in parallel, one progress bar counting files."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="file", disable=None if progress else True) as bar:
        futures = [pool.submit(download, remote, dest, progress=False) for remote, dest in jobs]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _fetch(remote: Remote, part: Path, progress: bool, timeout: float) -> None:
    """Append the rest of the file to ``part`` (all of it when the server ignores Range)."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(remote.url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the .part is already as long as the file, or longer
            part.unlink()
            raise _Interrupted("the partial download did not match the file, restarting") from None
        raise DownloadError(f"{remote.url}: HTTP {error.code} {error.reason}; {HAND_COPY_HINT}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"cannot download {remote.url} ({reason}); {HAND_COPY_HINT}") from None
    with response:
        if response.status != 206:
            offset = 0  # a full answer: restart the file cleanly
        total = _announced_total(response, offset)
        if remote.size is not None and total is not None and total != remote.size:
            raise DownloadError(f"{remote.url}: the server announces {total} bytes, expected {remote.size}")
        _stream(response, part, offset, total, progress)


def _announced_total(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The whole file's size from Content-Range (206) or Content-Length (200)."""
    content_range = response.headers.get("Content-Range", "")
    if response.status == 206 and "/" in content_range and not content_range.endswith("*"):
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length is not None else None


def _stream(response: http.client.HTTPResponse, part: Path, offset: int, total: int | None,
            progress: bool) -> None:
    written = offset
    with open(part, "ab" if offset else "wb") as file, \
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                 desc=part.name.removesuffix(".part"), disable=None if progress else True) as bar:
        while chunk := _read(response, f"interrupted after {written} of {total or '?'} bytes"):
            file.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    if total is not None and written < total:
        raise _Interrupted(f"interrupted after {written} of {total} bytes")


def _read(response: http.client.HTTPResponse, interrupted: str) -> bytes:
    try:
        return response.read(CHUNK)
    except (OSError, http.client.HTTPException) as error:  # reset, timeout, IncompleteRead
        raise _Interrupted(f"{interrupted} ({error})") from None


def _problem(remote: Remote, path: Path) -> str | None:
    """Why ``path`` is not the published file (size, md5, sha256), or None."""
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size is {size} bytes, expected {remote.size}"
    for name, expected in (("md5", remote.md5), ("sha256", remote.sha256)):
        if expected:
            actual = file_digest(path, name)
            if actual != expected.lower():
                return f"{name} is {actual}, expected {expected}"
    return None


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Archive:
    """A tar or zip archive from which selected regular-file members are read or
    extracted; absolute names, ``..`` components and links are refused."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if not self.path.is_file():
            raise DataError.at(self.path, "archive not found")
        with self._reading("the archive"):
            if zipfile.is_zipfile(self.path):
                self._zip = zipfile.ZipFile(self.path)
            else:
                self._tar = tarfile.open(self.path)  # noqa: SIM115  (closed by close())
                self._members = {member.name: member for member in self._tar.getmembers()}

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc_info) -> None:
        (self._zip or self._tar).close()

    def names(self) -> list[str]:
        """Names of the regular files, in archive order."""
        if self._zip is not None:
            return [info.filename for info in self._zip.infolist() if not info.is_dir()]
        return [name for name, member in self._members.items() if member.isreg()]

    def read(self, name: str) -> bytes:
        with self._reading(name), self._open(name, self.path.parent) as source:
            return source.read()

    def extract(self, files: Mapping[str, str], target: Path) -> None:
        """Write each member ``name`` to ``target / files[name]`` (a relative path)."""
        target = Path(target).resolve()
        for name in files:
            self._check_name(name)
        for name in self._in_archive_order(files):
            dest = (target / files[name]).resolve()
            if not dest.is_relative_to(target) or dest == target:
                raise self._refuse(name, f"would be written to {dest}, outside {target}")
            with self._reading(name), self._open(name, target) as source:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)

    def _in_archive_order(self, names: Iterable[str]) -> list[str]:
        """Stored order: a .tgz is then decompressed once, not once per backward seek."""
        if self._tar is None:
            return list(names)
        return sorted(names, key=lambda name: self._tar_member(name).offset)

    def _open(self, name: str, root: Path) -> IO[bytes]:
        self._check_name(name)
        if self._zip is not None:
            try:
                info = self._zip.getinfo(name)
            except KeyError:
                raise self._refuse(name, "is missing") from None
            if stat.S_ISLNK(info.external_attr >> 16):
                raise self._refuse(name, "is a symbolic link")
            return self._zip.open(info)
        member = self._tar_member(name)
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the 'data' extraction filter
            try:
                member = tarfile.data_filter(member, str(root))
            except tarfile.FilterError as error:
                raise self._refuse(name, f"is unsafe ({error})") from None
        return self._tar.extractfile(member)

    def _tar_member(self, name: str) -> tarfile.TarInfo:
        member = self._members.get(name)
        if member is None:
            raise self._refuse(name, "is missing")
        if member.issym() or member.islnk():
            raise self._refuse(name, f"is a link (to {member.linkname})")
        if not member.isreg():
            raise self._refuse(name, "is not a regular file")
        return member

    def _check_name(self, name: str) -> None:
        path = PurePosixPath(name.replace("\\", "/"))
        if path.is_absolute() or (path.parts and ":" in path.parts[0]):
            raise self._refuse(name, "has an absolute path")
        if ".." in path.parts:
            raise self._refuse(name, "escapes the target folder ('..')")

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Damaged data (truncated, bad CRC) as a DataError naming the archive."""
        try:
            yield
        except (EOFError, tarfile.TarError, zipfile.BadZipFile, zlib.error, gzip.BadGzipFile) as error:
            detail = " ".join(str(error).split())
            raise DataError.at(self.path, f"cannot read {what}: damaged or not a tar/zip archive ({detail}); "
                                          "delete it to download it again") from None

    def _refuse(self, name: str, problem: str) -> DataError:
        return DataError.at(self.path, f"member {name!r} {problem}")
