"""A sound catalog remembered for as long as nothing it was judged on has changed.

Why: every ``Store`` validates its definitions (``verify/sound.py``), and validating binds
each measure and dimension in DuckDB against its source: about a tenth of a second on the
demo, more on a larger project. A Dagster run builds a ``Store`` per step and the test suite
one per test, so the same folder was judged hundreds of times a run, unchanged. What a
verdict rests on is the YAML (kept by content: a file rewritten within the clock's tick is
still seen) and the source and spine files (kept by size, modification time and inode:
data files can be large). A project whose verdict rests on anything else (a table in a
warehouse, a pushed model's batches, an S3 source) is judged every time.

What is kept is only the verdict: queries still read the sources as they are. Failures are
never kept: a broken folder is read again, so a fix shows at once.
"""

from __future__ import annotations

import glob
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from pantry.offline.sources import source_kind, source_path
from pantry.spec.load import defs_files

if TYPE_CHECKING:
    from pantry.offline.store import OfflineStore
    from pantry.spec.model import Catalog

KEPT = 16  # folders remembered per process (a test run opens many, a service one)
_kept: OrderedDict[tuple[str, str], tuple[bytes, list[str], tuple, Catalog]] = OrderedDict()
_lock = threading.Lock()


def _yaml_digest(root: Path) -> bytes:
    """Every definitions file's path and content (the files ``read_catalog`` reads)."""
    digest = hashlib.blake2b(digest_size=16)
    for path in defs_files(root):
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def _sources(catalog: Catalog) -> list[str] | None:
    """The source and spine files (or globs) a verdict on ``catalog`` reads; None when it
    reads something else."""
    patterns: list[str] = []
    for model in catalog.semantic_models.values():
        if source_kind(model.source) != "file" or model.ingest == "push":
            return None
        patterns.append(str(source_path(catalog, model)))
    for spine in catalog.time_spines:
        if source_kind(spine.source) != "file":
            return None
        path = Path(spine.source)
        patterns.append(str(path if path.is_absolute() else catalog.root / path))
    return patterns


def _stamp(patterns: list[str]) -> tuple:
    """Size, mtime and inode of every file the patterns match now (a missing one as such)."""
    stamps: list[tuple] = []
    for pattern in patterns:
        for found in sorted(glob.glob(pattern)) or [pattern]:
            try:
                st = Path(found).stat()
            except OSError:
                stamps.append((found,))
                continue
            stamps.append((found, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(stamps)


def _key(root: Path, offline: OfflineStore | None) -> tuple[str, str] | None:
    if offline is not None and offline.warehouse is not None:
        return None  # sources may be the warehouse's tables
    return (str(root), str(Path(root).resolve()))


def recall(root: Path, offline: OfflineStore | None) -> tuple[Catalog | None, bytes | None]:
    """(the kept catalog if nothing it was judged on changed, the YAML digest to keep a new one under)."""
    key = _key(root, offline)
    if key is None or not Path(root).is_dir():
        return None, None
    digest = _yaml_digest(Path(root))
    with _lock:
        kept = _kept.get(key)
    if kept is None or kept[0] != digest or _stamp(kept[1]) != kept[2]:
        return None, digest
    with _lock:
        _kept.move_to_end(key)
    return kept[3], digest


def sources_now(as_read: Catalog) -> tuple[list[str], tuple] | None:
    """The files a verdict on ``as_read`` (every model the YAML names, so that a model left
    out for a missing source comes back when the file appears) reads, stamped before it is
    judged; None when it reads something that cannot be stamped."""
    patterns = _sources(as_read)
    return None if patterns is None else (patterns, _stamp(patterns))


def keep(
    root: Path,
    offline: OfflineStore | None,
    digest: bytes | None,
    sources: tuple[list[str], tuple] | None,
    sound: Catalog,
) -> None:
    """Remember ``sound``, judged on the YAML of ``digest`` and the files of ``sources``."""
    key = _key(root, offline)
    if key is None or digest is None or sources is None:
        return
    with _lock:
        _kept[key] = (digest, sources[0], sources[1], sound)
        _kept.move_to_end(key)
        while len(_kept) > KEPT:
            _kept.popitem(last=False)
