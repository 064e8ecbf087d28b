"""The label store (DESIGN.md §6): teacher outputs as a folder of Arrow IPC shards.

Layout of ``STORE/``::

    manifest.json            written last: format, kind, fingerprints, views, shard list
    shard-00000.arrow        Arrow IPC file: sample_id, view_id, the kind's columns
    shard-00000.json         the shard's sidecar: rows, samples, sha256 (written after it)

Rows are sample-major: shard ``s`` holds samples ``[s·S, (s+1)·S)`` with every view of each.
Every file is written to a temp name, fsynced and renamed, so a killed labeler leaves only
complete shards (each with its sidecar) and temp files; a rerun removes the temp files and
skips every shard whose sidecar matches its bytes. One labeler at a time: while it runs it
holds an exclusive ``flock`` on ``STORE/.lock`` (:func:`store_lock`), and a second labeler of
the same folder is refused. Shards are plain Arrow: ``pyarrow.ipc``,
``pandas`` (``pa.ipc.open_file(f).read_pandas()``) and HF ``datasets`` read them without mentor.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import reprlib
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import torch
from torch import Tensor

from .._util.atomic import atomic_path, atomic_write_text
from ..errors import MentorError
from .._util.locks import folder_lock
from .._util.safeio import (MAX_JSON_BYTES, MAX_SIDECAR_BYTES, FileProblem, open_regular,
                      kind_of, read_bounded, regular_file, shown)
from .fingerprint import data_fingerprint, same, teacher_fingerprint
from .kinds import Kind, kind_from_manifest
from .views import Views

FORMAT = "mentor-label-store"
FORMAT_VERSION = 2  # 2: the manifest carries a checksum of itself; 1 (no checksum) is read


class StoreError(MentorError):
    """A label store is missing, corrupt, or belongs to another teacher or data set."""


def sha256_file(path: Path) -> str:
    """sha256 of a regular file (a FIFO or device is a :class:`~mentor._util.safeio.FileProblem`,
    never read)."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_checksum(m: dict[str, Any]) -> str:
    """sha256 of a manifest without its ``checksum``, as canonical JSON."""
    body = {k: v for k, v in m.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def _shard_name(s: int) -> str:
    return f"shard-{s:05d}"


# ------------------------------------------------------------------------------- locking

LOCK = ".lock"


@contextlib.contextmanager
def store_lock(out: str | Path):
    """Hold the store folder's labeling lock (:func:`mentor._util.locks.folder_lock` on
    ``out/.lock``, which names the holder: pid, host, start time). A second holder is refused
    at once with a :class:`StoreError` naming the folder and the holder's pid; the lock of a
    killed labeler does not block (the kernel released it)."""
    def refuse(holder: str) -> StoreError:
        return StoreError(f"label store '{out}' is locked by another labeler ({holder}); "
                          "expected one labeler per store folder: wait for it to finish, or "
                          "label into another folder")
    with folder_lock(out, refuse, what="mentor label") as lock:
        yield None if lock is None else lock.path


# ------------------------------------------------------------------------------- writing


def write_store(teacher, x: Tensor, out: str | Path, kind: Kind, *,
                views: Views | None = None, shard_samples: int = 2048, batch_size: int = 1024,
                on_rows: Callable[[int], None] | None = None, rank: int = 0, world: int = 1,
                barrier: Callable[[], None] | None = None,
                extra_manifest: dict[str, Any] | None = None,
                features: list[str] | tuple[str, ...] = (),
                lock: bool | None = None) -> Path | None:
    """Label every row of ``x`` (every view of it) with ``teacher`` into the store ``out``.

    ``features``: dotted paths of teacher modules whose outputs are stored too (column
    ``feat:<path>``, shape in the manifest), so feature-distillation methods can train from
    the store.

    Resumable: shards already complete (sidecar present, checksum matching) are skipped.
    Under several processes rank ``r`` writes shards ``r, r + world, ...``; after
    ``barrier()`` rank 0 writes the manifest. ``on_rows(n)`` reports progress.
    Returns the store path on rank 0 (None elsewhere).

    ``lock``: hold :func:`store_lock` for the whole labeling (default: when ``world`` is 1).
    Under several processes the caller holds it on rank 0 and lets the other ranks start
    after a barrier (:func:`mentor.commands.label.label` does), so that a second labeling
    run's ranks never touch a folder that another run's rank 0 holds.
    """
    out = Path(out)
    if os.path.lexists(out) and not os.path.isdir(out):  # (never raise: a long name is told below)
        what = "a file" if os.path.isfile(out) else kind_of(os.lstat(out).st_mode)
        raise StoreError(f"label store {shown(out)} is {what}; expected a folder (a new one, "
                         "or a store to resume)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = e.strerror or str(e)
        if e.errno == errno.ENAMETOOLONG:
            why += ": a name component is over 255 bytes"
        raise StoreError(f"label store {shown(out)} cannot be created ({why}); expected a "
                         "writable folder") from None
    if lock is None:
        lock = world == 1
    with store_lock(out) if lock else contextlib.nullcontext():
        return _write_store(teacher, x, out, kind, views=views, shard_samples=shard_samples,
                            batch_size=batch_size, on_rows=on_rows, rank=rank, world=world,
                            barrier=barrier, extra_manifest=extra_manifest,
                            features=features)


def _write_store(teacher, x: Tensor, out: Path, kind: Kind, *, views, shard_samples,
                 batch_size, on_rows, rank, world, barrier, extra_manifest,
                 features) -> Path | None:
    n = len(x)
    if n == 0:
        raise MentorError("label store: the data has no rows")
    if shard_samples < 1:
        raise MentorError(f"label store shard_samples must be >= 1, got {shard_samples}")
    n_views = views.views if views is not None else 1
    n_shards = math.ceil(n / shard_samples)
    # leftovers of a killed writer: each rank removes only those of its own shards (another
    # rank may be writing its temp files right now); rank 0 also the manifest's
    mine = {_shard_name(s) for s in range(rank, n_shards, world)}
    if rank == 0:
        mine.add("manifest")
    for tmp in out.glob(".*.tmp"):
        stem = tmp.name[1:].split(".", 1)[0]
        if stem in mine or (rank == 0 and stem.startswith("shard-")
                            and int(stem[6:] or 0) >= n_shards):
            tmp.unlink(missing_ok=True)
    teacher_fp = teacher_fingerprint(teacher, probe=x[:64])
    data_fp = data_fingerprint(x)
    tapped, feature_kinds = _feature_taps(teacher, list(features), x[:2])
    header = {"kind": kind.describe(), "teacher": teacher_fp, "data": data_fp,
              "views": views.describe() if views is not None else None}
    if feature_kinds:
        header["features"] = {p: k.describe() for p, k in feature_kinds.items()}
    existing = _read_json(out / "manifest.json", MAX_JSON_BYTES)
    if existing is not None and _identity(existing) != _identity(header):
        raise StoreError(f"label store '{out}' already holds outputs of another teacher, data "
                         "set, kind or views (manifest.json differs); expected an empty folder "
                         "or the same labeling command")
    for s in range(rank, n_shards, world):
        lo, hi = s * shard_samples, min((s + 1) * shard_samples, n)
        rows = (hi - lo) * n_views
        name = _shard_name(s)
        if _shard_complete(out, name, header, rows, [lo, hi]):
            if on_rows:
                on_rows(rows)
            continue
        try:
            table = _label_shard(tapped or teacher, x, lo, hi, kind, views, batch_size, on_rows,
                                 feature_kinds)
        except BaseException:
            if tapped is not None:
                tapped.remove()
            raise
        _save_shard(out, name, s, lo, hi, rows, table, _identity(header))
    if tapped is not None:
        tapped.remove()
    if barrier is not None:
        barrier()
    if rank != 0:
        return None
    shards = []
    for s in range(n_shards):
        side = _read_json(out / f"{_shard_name(s)}.json")
        if side is None:
            raise StoreError(f"label store '{out}': shard {_shard_name(s)}.json is missing after "
                             "labeling; expected every rank to finish its shards")
        shards.append({k: side[k] for k in ("file", "rows", "samples", "sha256", "bytes")})
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "task": "classification",
                **header, "samples": n, "views_per_sample": n_views,
                "rows": n * n_views, "shard_samples": shard_samples, "shards": shards,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra_manifest or {})}
    from .. import __version__
    manifest["mentor_version"] = __version__
    manifest["checksum"] = manifest_checksum(manifest)  # written last, over everything above
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return out


def _save_shard(out: Path, name: str, s: int, lo: int, hi: int, rows: int, table: pa.Table,
                identity: str) -> None:
    """Write one shard, then its sidecar, each atomically. The sha256 is taken from the
    serialized bytes in memory (what was written), not by reading the file back."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    buf = sink.getvalue()
    with atomic_path(out / f"{name}.arrow") as tmp:
        with open(tmp, "wb") as f:
            f.write(memoryview(buf))
    side = {"file": f"{name}.arrow", "shard": s, "rows": rows, "samples": [lo, hi],
            "sha256": hashlib.sha256(memoryview(buf)).hexdigest(), "bytes": buf.size,
            "identity": identity}
    atomic_write_text(out / f"{name}.json", json.dumps(side, indent=1))


def _identity(d: dict[str, Any]) -> str:
    """What makes two labeling runs the same: kind, teacher, data and views."""
    def fp(f):
        return None if f is None else {k: f.get(k) for k in ("method", "sha256", "architecture",
                                                              "rows", "shape")}
    return json.dumps({"kind": d.get("kind"), "teacher": fp(d.get("teacher")),
                       "data": fp(d.get("data")), "views": d.get("views"),
                       "features": d.get("features")}, sort_keys=True)


def _feature_taps(teacher, paths: list[str], example: Tensor):
    """Hooks on the teacher's ``paths`` and a tensor kind per path (its row shape)."""
    if not paths:
        return None, {}
    from ..models.taps import Tap, TappedTeacher
    if len(set(paths)) != len(paths):
        raise MentorError(f"label store features {paths} name a module twice")
    tapped = TappedTeacher(teacher, [Tap(p, None, p) for p in paths])
    try:
        shapes = {k[5:]: v.shape[1:] for k, v in tapped.outputs(example).items()
                  if k.startswith("feat:")}
    except BaseException:
        tapped.remove()
        raise
    from .kinds import Tensors
    return tapped, {p: Tensors(tuple(shapes[p])) for p in paths}


def _read_json(path: Path, limit: int = MAX_SIDECAR_BYTES) -> dict | None:
    """A JSON object that mentor wrote (sidecar, manifest), or None when it is absent or not
    one (a regular file of bounded size only)."""
    try:
        value = json.loads(read_bounded(path, limit))
    except (OSError, ValueError, RecursionError, FileProblem):
        return None
    return value if isinstance(value, dict) else None


def _shard_complete(out: Path, name: str, header: dict, rows: int,
                    samples: list[int]) -> bool:
    """A finished shard of *these* samples (a rerun may use another shard size)."""
    side = _read_json(out / f"{name}.json")
    arrow = out / f"{name}.arrow"
    if side is None or not arrow.is_file():
        return False
    if not (side.get("identity") == _identity(header) and side.get("rows") == rows
            and side.get("samples") == samples):
        return False
    try:
        return side.get("sha256") == sha256_file(arrow)
    except (OSError, FileProblem):
        return False  # unreadable: labeled again


def _label_shard(teacher, x: Tensor, lo: int, hi: int, kind: Kind, views: Views | None,
                 batch_size: int, on_rows, feature_kinds: dict[str, Kind]) -> pa.Table:
    n_views = views.views if views is not None else 1
    sample = torch.arange(lo, hi).repeat_interleave(n_views)
    view = torch.arange(n_views).repeat(hi - lo)
    columns: dict[str, list] = {}
    for i in range(0, len(sample), batch_size):
        sid, vid = sample[i:i + batch_size], view[i:i + batch_size]
        # one view per sample: the ids are lo + i.., so a slice (no copy) replaces the gather
        xb = x[lo + i:lo + i + len(sid)] if views is None else x[sid.to(x.device)]
        if views is not None:
            xb = views.apply(xb, sid, vid, len(x))
        with torch.no_grad():
            out = teacher.outputs(xb) if feature_kinds else {"logits": teacher.logits(xb)}
        for k, arr in kind.encode(out["logits"]).items():
            columns.setdefault(k, []).append(arr)
        for path, fkind in feature_kinds.items():
            columns.setdefault(f"feat:{path}", []).append(
                fkind.encode(out[f"feat:{path}"])["value"])
        if on_rows:
            on_rows(len(sid))
    data = {"sample_id": pa.array(sample.numpy().astype("int64")),
            "view_id": pa.array(view.numpy().astype("int32"))}
    for k, parts in columns.items():
        data[k] = pa.concat_arrays(parts)
    return pa.table(data)


# ------------------------------------------------------------------------------- reading

# what a manifest must hold before a store is opened: key -> type
_MANIFEST_TYPES = {"kind": dict, "samples": int, "views_per_sample": int, "rows": int,
                   "shards": list, "teacher": dict, "data": dict}
_NESTED_TYPES = {"teacher": {"sha256": str}, "data": {"sha256": str, "rows": int, "shape": list}}
_SHARD_TYPES = {"file": str, "rows": int, "bytes": int, "sha256": str}


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's structure (None: nothing), as a clause."""
    def wrong(where: str, value, typ) -> str | None:
        if not isinstance(value, typ) or isinstance(value, bool):
            return f"has {where} {reprlib.repr(value)}, not a JSON {_JSON_NAMES[typ]}"
        return None

    for key, typ in _MANIFEST_TYPES.items():
        if key not in m:
            return f"lacks the key {key!r}"
        if (problem := wrong(key, m[key], typ)) is not None:
            return problem
    for key, types in _NESTED_TYPES.items():
        for sub, typ in types.items():
            if sub not in m[key]:
                return f"lacks {key}.{sub}"
            if (problem := wrong(f"{key}.{sub}", m[key][sub], typ)) is not None:
                return problem
    if not isinstance(m["kind"].get("kind"), str):
        return f"has kind {reprlib.repr(m['kind'])} without a kind name"
    for i, sh in enumerate(m["shards"]):
        if not isinstance(sh, dict):
            return f"has shards[{i}] {reprlib.repr(sh)}, not a JSON object"
        for key, typ in _SHARD_TYPES.items():
            if key not in sh:
                return f"lacks shards[{i}].{key}"
            if (problem := wrong(f"shards[{i}].{key}", sh[key], typ)) is not None:
                return problem
        if Path(sh["file"]).name != sh["file"] or sh["file"] in ("", ".", ".."):
            return f"has shards[{i}].file {sh['file'][:100]!r}, not a file name in the store"
    for key in ("samples", "views_per_sample", "rows"):  # counts a store can hold
        if not 0 <= m[key] <= _MAX_COUNT:
            return f"has {key} {m[key]}, outside [0, {_MAX_COUNT}]"
    if m["rows"] != m["samples"] * m["views_per_sample"]:
        return (f"has rows {m['rows']}, not samples x views_per_sample = {m['samples']} x "
                f"{m['views_per_sample']}")
    shard_rows = sum(sh["rows"] for sh in m["shards"])
    if shard_rows != m["rows"]:
        return f"has rows {m['rows']} but its shards hold {shard_rows}"
    return None


_MAX_COUNT = 1 << 40


_JSON_NAMES = {dict: "object", list: "list", int: "integer", str: "string"}



class LabelStore:
    """A complete label store, verified on opening.

    ``open(path, teacher=..., data=...)`` checks the manifest, that every shard exists with
    the recorded size and sha256, and -- when a teacher or data are given -- that the
    fingerprints match (``allow_mismatch=True`` overrides that check, never the checksums).
    """

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.kind: Kind = kind_from_manifest(manifest["kind"])
        self.views = Views.from_manifest(manifest["views"]) if manifest.get("views") else None
        self.samples = int(manifest["samples"])
        self.views_per_sample = int(manifest["views_per_sample"])
        self.features = {p: kind_from_manifest(d)
                         for p, d in (manifest.get("features") or {}).items()}
        self._dense: Tensor | None = None
        self._features: dict[str, Tensor] | None = None

    @classmethod
    def open(cls, path: str | Path, *, teacher=None, data: Tensor | None = None,
             allow_mismatch: bool = False, verify: bool = True) -> "LabelStore":
        path = Path(path)
        mpath = path / "manifest.json"
        if not path.is_dir():
            raise StoreError(f"label store {shown(path)} does not exist or is not a folder")
        if not os.path.lexists(mpath):
            raise StoreError(f"label store {shown(path)} has no manifest.json; it is incomplete "
                             "(rerun the labeling command to finish it)")
        try:
            manifest = json.loads(read_bounded(mpath, MAX_JSON_BYTES, "a store manifest"))
        except FileProblem as e:
            raise StoreError(f"label store manifest {e}") from None
        except (ValueError, RecursionError) as e:
            raise StoreError(f"label store manifest {shown(mpath)} is not valid JSON "
                             f"({str(e)[:200]})") from None
        if not isinstance(manifest, dict):
            raise StoreError(f"label store manifest {shown(mpath)} holds a JSON "
                             f"{type(manifest).__name__}; expected an object")
        if manifest.get("format") != FORMAT:
            raise StoreError(f"{shown(mpath)} is not a mentor label store manifest (format "
                             f"{str(manifest.get('format'))[:60]!r}); expected {FORMAT!r}")
        version = manifest.get("format_version")
        if version not in (1, FORMAT_VERSION) or isinstance(version, bool):
            raise StoreError(f"{shown(mpath)} has format_version {str(version)[:20]!r}; this "
                             f"mentor reads versions 1 and {FORMAT_VERSION}")
        problem = _manifest_problem(manifest)
        if problem is None and version >= 2 and \
                manifest.get("checksum") != manifest_checksum(manifest):
            raise StoreError(f"label store manifest {shown(mpath)} fails its checksum (it was "
                             "edited or damaged since mentor label wrote it); expected the "
                             "manifest mentor label writes: relabel the store, or restore the "
                             "file")
        if problem is None:
            try:
                store = cls(path, manifest)
            except MentorError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
                problem = f"cannot be read ({type(e).__name__}: {str(e)[:200]})"
        if problem is not None:
            raise StoreError(f"label store manifest {shown(mpath)} {problem}; expected the "
                             "manifest that mentor label writes (relabel the store)")
        if verify:
            store.verify()
        if not allow_mismatch:
            store.check_fingerprints(teacher=teacher, data=data)
        return store

    def verify(self) -> None:
        """Every shard present, with the recorded size and sha256."""
        for sh in self.manifest["shards"]:
            f = self.path / sh["file"]
            try:
                size = os.stat(f).st_size if os.path.lexists(f) else None
            except OSError:
                size = None
            if size is None:
                raise StoreError(f"label store shard {shown(f)} is missing; expected "
                                 f"{sh['rows']} rows there")
            try:
                regular_file(f, what="an Arrow shard")
                if size != sh["bytes"]:
                    raise StoreError(f"label store shard {shown(f)} has {size} bytes but the "
                                     f"manifest records {sh['bytes']} (truncated or "
                                     "overwritten)")
                digest = sha256_file(f)
            except FileProblem as e:
                raise StoreError(f"label store shard {e}; relabel or restore it") from None
            except OSError as e:
                raise StoreError(f"label store shard {shown(f)} cannot be read "
                                 f"({(e.strerror or str(e)).lower()}); expected a readable "
                                 "file (check its permissions)") from None
            if digest != sh["sha256"]:
                raise StoreError(f"label store shard {shown(f)} fails its sha256 check (its "
                                 "bytes changed since it was written); relabel or restore it")

    def check_fingerprints(self, *, teacher=None, data: Tensor | None = None) -> None:
        m = self.path / "manifest.json"
        if data is not None and not same(self.manifest.get("data"), data_fingerprint(data)):
            raise StoreError(f"label store '{m}' was made from other data (sha256 "
                             f"{self.manifest['data']['sha256'][:12]}…, "
                             f"{self.manifest['data']['rows']} rows) than the data given "
                             f"({len(data)} rows); expected the same inputs, or pass "
                             "allow_mismatch=True (in a recipe: teacher.allow_mismatch: "
                             "true) to use it anyway")
        if teacher is not None:
            probe = data[:64] if data is not None else None
            try:
                fp = teacher_fingerprint(teacher, probe=probe)
            except ValueError:
                raise StoreError(f"label store '{m}': the teacher given has no modules, so it "
                                 "is fingerprinted by its outputs; pass data= (the inputs the "
                                 "store was made from) to compare it") from None
            if not same(self.manifest.get("teacher"), fp):
                raise StoreError(f"label store '{m}' was made by another teacher "
                                 f"({self.manifest['teacher'].get('description')}, sha256 "
                                 f"{self.manifest['teacher']['sha256'][:12]}…) than the one "
                                 "given; expected the same weights, or pass "
                                 "allow_mismatch=True (in a recipe: teacher.allow_mismatch: "
                                 "true) to use it anyway")

    # ----------------------------------------------------------------------- contents

    def table(self) -> pa.Table:
        """Every row, in (sample_id, view_id) order."""
        tables = []
        for sh in self.manifest["shards"]:
            f = self.path / sh["file"]
            try:
                regular_file(f, what="an Arrow shard")  # a FIFO would block the map
                with pa.memory_map(str(f), "r") as src:
                    tables.append(pa.ipc.open_file(src).read_all())
            except FileProblem as e:
                raise StoreError(f"label store shard {e}") from None
            except (pa.ArrowInvalid, OSError) as e:
                raise StoreError(f"label store shard {shown(f)} cannot be read as Arrow "
                                 f"({str(e)[:200]})") from None
        return pa.concat_tables(tables)

    def outputs(self) -> Tensor | tuple[Tensor, ...]:
        """Decoded outputs as a dense tensor ``(samples, views, ...)`` (cached); a tuple of
        them for kinds that decode to several tensors (``token_topk``: ``(indices,
        logprobs)``, each ``(samples, views, seq_len, k)``)."""
        if self._dense is None:
            t = self.table()
            decoded = self.kind.decode(t)
            sid = torch.from_numpy(t.column("sample_id").to_numpy().astype("int64"))
            vid = torch.from_numpy(t.column("view_id").to_numpy().astype("int64"))
            if len(t) != self.samples * self.views_per_sample:
                raise StoreError(f"label store '{self.path}' has {len(t)} rows; the manifest "
                                 f"promises {self.samples} x {self.views_per_sample}")
            if len(t) and (int(sid.min()) < 0 or int(sid.max()) >= self.samples
                           or int(vid.min()) < 0 or int(vid.max()) >= self.views_per_sample):
                raise StoreError(f"label store '{self.path}' has rows outside {self.samples} "
                                 f"samples x {self.views_per_sample} views")
            seen = torch.zeros(self.samples, self.views_per_sample, dtype=torch.long)
            seen.index_put_((sid, vid), torch.ones_like(sid), accumulate=True)
            if not bool((seen == 1).all()):  # every (sample, view) exactly once
                lost, dup = int((seen == 0).sum()), int((seen > 1).sum())
                raise StoreError(f"label store '{self.path}' has {lost} missing and {dup} "
                                 "repeated (sample_id, view_id) pairs; relabel it")
            # a kind may decode to several tensors (token_topk: indices, logprobs)
            parts = decoded if isinstance(decoded, tuple) else (decoded,)
            dense = []
            for part in parts:
                d = torch.empty(self.samples, self.views_per_sample, *part.shape[1:],
                                dtype=part.dtype)
                d[sid, vid] = part
                dense.append(d)
            self._dense = tuple(dense) if isinstance(decoded, tuple) else dense[0]
            self._features = {}
            for path, fkind in self.features.items():
                values = fkind.decode(t.rename_columns(
                    ["value" if c == f"feat:{path}" else c for c in t.column_names]))
                feat = torch.empty(self.samples, self.views_per_sample, *values.shape[1:])
                feat[sid, vid] = values
                self._features[path] = feat
        return self._dense

    def feature(self, path: str) -> Tensor:
        """Stored outputs of teacher module ``path``: ``(samples, views, *shape)``."""
        if path not in self.features:
            from ..registry import suggest
            raise MentorError(f"label store '{self.path}' holds no feature of teacher module "
                              f"{path!r}{suggest(path, self.features)}; it holds "
                              f"{', '.join(map(repr, self.features)) or 'none'} (mentor label "
                              "--feature PATH stores one)")
        self.outputs()
        return self._features[path]

    def as_teacher(self) -> "StoreTeacher":
        return StoreTeacher(self)


class StoreTeacher:
    """A label store used as a teacher (a cached teacher): the engine asks for the rows of
    the training split it was made from. ``logits_at(x, index)`` returns view 0 of samples
    ``index``; ``logits_at_view(x, index, view)`` a stored view. It never sees ``x``."""

    cacheable = True
    frozen = True

    def __init__(self, store: LabelStore):
        if store.kind.name in ("tensor", "token_topk"):
            raise MentorError(f"a label store of kind {store.kind.name!r} holds no class "
                              "outputs; expected kind logits, topk or hard to use it as a "
                              "teacher")
        self.store = store
        self.num_classes = store.kind.num_classes
        self.views = store.views
        self.description = (f"label store {store.path.name} ({store.kind.name}, "
                            f"{store.samples} samples x {store.views_per_sample} views; teacher "
                            f"{store.manifest['teacher'].get('description')})")
        self._table = store.outputs()

    def to(self, device) -> "StoreTeacher":
        self._table = self._table.to(device)
        return self

    def _rows(self, index: Tensor) -> Tensor:
        index = torch.as_tensor(index).long()
        if index.numel() and (int(index.max()) >= self.store.samples or int(index.min()) < 0):
            raise MentorError(f"label store has {self.store.samples} samples but training "
                              f"position {int(index.max())} was asked for; expected the store "
                              "of this training split")
        return index.to(self._table.device)

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        return self._table[self._rows(index), 0]

    def logits_at_view(self, x: Tensor, index: Tensor, view: Tensor) -> Tensor:
        return self._table[self._rows(index), torch.as_tensor(view).long().to(self._table.device)]

    def tapped(self, taps) -> "StoreTapped":
        """The store as a tapped teacher: each tap's teacher module read from its column."""
        return StoreTapped(self, taps)

    def logits(self, x: Tensor) -> Tensor:
        raise MentorError("a label store holds teacher outputs only for the rows it was made "
                          "from; it cannot label new inputs (use logits_at with training "
                          "positions)")

    def train(self, mode: bool = True):
        return self


class StoreTapped:
    """A label store standing in for a tapped module teacher (feature distillation):
    ``outputs(x, index)`` returns the stored logits and ``feat:<tap name>`` features."""

    frozen = True

    def __init__(self, teacher: StoreTeacher, taps):
        self.teacher = teacher
        self.num_classes = teacher.num_classes
        self.views = teacher.views
        self.store = teacher.store
        self.cacheable = True
        self._feats = {t.key: teacher.store.feature(t.teacher) for t in taps}

    def to(self, device) -> "StoreTapped":
        self.teacher.to(device)
        self._feats = {k: v.to(device) for k, v in self._feats.items()}
        return self

    def outputs(self, x: Tensor, index: Tensor | None = None, view: Tensor | None = None):
        if index is None:
            raise MentorError("a label store answers for training positions only; expected "
                              "outputs(x, index)")
        rows = self.teacher._rows(index)
        v = (torch.zeros_like(rows) if view is None
             else torch.as_tensor(view).long().to(rows.device))
        return {"logits": self.teacher._table[rows, v],
                **{k: f[rows, v] for k, f in self._feats.items()}}

    def logits_at(self, x: Tensor, index: Tensor) -> Tensor:
        return self.outputs(x, index)["logits"]

    def logits_at_view(self, x: Tensor, index: Tensor, view: Tensor):
        return self.outputs(x, index, view)

    def logits(self, x: Tensor) -> Tensor:
        return self.teacher.logits(x)

    def remove(self) -> None:
        pass

    def train(self, mode: bool = True):
        return self
