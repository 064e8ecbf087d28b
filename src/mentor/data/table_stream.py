"""A table file read front to back in record batches, never whole: what a table too large for
memory is read with (:mod:`mentor.data.stream_source`).

Each format is read through a file handle, not a memory map, so what the process holds is
the batch being read (the page cache is the kernel's): Parquet by row groups' batches, an
Arrow IPC file or stream (a Hugging Face ``save_to_disk`` shard) batch by batch, CSV and JSON
Lines block by block. A Hugging Face ``DatasetDict`` folder yields its splits in the order
its ``dataset_dict.json`` lists them, each batch with the split's name in
:data:`~mentor.data.tables.SPLIT_COLUMN`, as :func:`~mentor.data.tables.read_table` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import DataError
from .tables import (SPLIT_COLUMN, SPLIT_NAMES, TABLE_SUFFIXES, _first_line, dict_split_names,
                     read_shard_names)

BATCH_ROWS = 4096  # rows per batch where the reader chooses (Parquet)
CSV_BLOCK = 1 << 20  # bytes per CSV / JSON Lines block


def table_batches(path: Path, columns: list[str] | None = None,
                  field: str = "data.source") -> Iterator:
    """The rows of ``path`` as ``pyarrow.Table`` pieces in file order (``columns``: only
    these, where the format can skip the others); one :class:`DataError` sentence for an
    unreadable file."""
    from .._util.safeio import shown
    where = f"{field} {shown(path)}"
    if path.is_dir():
        yield from _hf_batches(path, columns, where)
        return
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    try:
        if kind == "Parquet":
            yield from _parquet(path, columns)
        elif kind == "Arrow":
            yield from _select(_ipc(path), columns)
        elif kind == "CSV":
            yield from _csv(path, columns)
        elif kind == "JSON Lines":
            yield from _select(_jsonl(path), columns)
        else:
            raise DataError(f"{where} has suffix {path.suffix!r}; expected a table file "
                            f"({', '.join(sorted(TABLE_SUFFIXES))}) or a dataset folder to "
                            "stream")
    except DataError:
        raise
    except Exception as e:  # pyarrow's ArrowInvalid, OSError, ... with a readable text
        raise DataError(f"{where} is not a readable {kind} file ({_first_line(e)})") from None


def table_columns(path: Path, field: str = "data.source") -> list[str]:
    """The column names of ``path`` (its first batch's)."""
    for piece in table_batches(path, None, field):
        return list(piece.column_names)
    from .._util.safeio import shown
    raise DataError(f"{field} {shown(path)} has no rows; expected a table with rows")


def _table(batch):
    import pyarrow as pa
    return pa.Table.from_batches([batch])


def _select(pieces, columns):
    for t in pieces:
        yield t if columns is None else t.select(columns)


def _parquet(path: Path, columns):
    """Row group by row group: ``ParquetFile.iter_batches`` held the whole file of a list
    column in Arrow's pool (648 MiB for a 586 MiB column, pyarrow 26); one row group at a
    time holds about two."""
    import pyarrow.parquet as pq
    with pq.ParquetFile(path) as f:
        for i in range(f.num_row_groups):
            group = f.read_row_group(i, columns=columns, use_threads=False)
            for start in range(0, group.num_rows, BATCH_ROWS):
                yield group.slice(start, BATCH_ROWS)


def _ipc(path: Path):
    """An Arrow IPC file (random-access format) or stream, batch by batch from a file handle."""
    import pyarrow as pa
    with pa.OSFile(str(path)) as f:
        try:
            reader = pa.ipc.open_file(f)
        except pa.ArrowInvalid:
            reader = None
        if reader is not None:
            for i in range(reader.num_record_batches):
                yield _table(reader.get_batch(i))
            return
    with pa.OSFile(str(path)) as f:
        for batch in pa.ipc.open_stream(f):
            yield _table(batch)


def _csv(path: Path, columns):
    import pyarrow.csv as pc
    parse = pc.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    convert = pc.ConvertOptions(include_columns=columns) if columns is not None else None
    with pc.open_csv(path, parse_options=parse, convert_options=convert,
                     read_options=pc.ReadOptions(block_size=CSV_BLOCK)) as reader:
        for batch in reader:
            yield _table(batch)


def _jsonl(path: Path):
    import pyarrow.json as pj
    with pj.open_json(path, read_options=pj.ReadOptions(block_size=CSV_BLOCK)) as reader:
        for batch in reader:
            yield _table(batch)


def _hf_batches(path: Path, columns, where: str):
    import pyarrow as pa
    listed = path / "dataset_dict.json"
    if not listed.is_file():
        for shard in read_shard_names(path, where):
            yield from _select(_shard(path / shard, where), columns)
        return
    for name in dict_split_names(path, where):
        own = [c for c in columns if c != SPLIT_COLUMN] if columns is not None else None
        for shard in read_shard_names(path / name, f"{where} split {name!r}"):
            for t in _select(_shard(path / name / shard, where), own):
                yield t.append_column(SPLIT_COLUMN, pa.array([SPLIT_NAMES[name]] * t.num_rows,
                                                             pa.string()))


def _shard(path: Path, where: str):
    try:
        yield from _ipc(path)
    except Exception as e:
        raise DataError(f"{where}: shard {path.name!r} is not a readable Arrow file "
                        f"({_first_line(e)})") from None
