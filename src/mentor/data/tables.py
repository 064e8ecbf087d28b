"""Files of named columns read as Arrow tables: CSV, Parquet, Arrow/Feather, JSON Lines, and
Hugging Face ``datasets`` folders written by ``save_to_disk``.

Everything is read with ``pyarrow`` (never unpickled, nothing imported from the user): a
Hugging Face folder is its ``.arrow`` shards (Arrow IPC streams) plus ``dataset_info.json``,
read without the ``datasets`` package. A ``DatasetDict`` folder (``dataset_dict.json``) gives
its splits by name; :func:`read_table` returns them as one table with a ``__split__`` column.
Arrow files are memory-mapped: the table's buffers are the file's pages, not copies.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError
from .files import existing_file

# the formats a path may name, by suffix (a folder is a Hugging Face dataset or images)
TABLE_SUFFIXES = {".csv": "CSV", ".tsv": "CSV", ".parquet": "Parquet", ".pq": "Parquet",
                  ".arrow": "Arrow", ".feather": "Arrow", ".ipc": "Arrow",
                  ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".json": "JSON Lines"}

# the column a DatasetDict's split names travel in (a name no user column takes)
SPLIT_COLUMN = "__split__"
# a Hugging Face split name -> mentor's
SPLIT_NAMES = {"train": "train", "validation": "val", "valid": "val", "val": "val",
               "dev": "val", "test": "test"}


def is_table_path(source: str) -> bool:
    """Whether ``source`` names a table file by its suffix, or a Hugging Face dataset folder."""
    p = Path(source)
    return p.suffix.lower() in TABLE_SUFFIXES or is_hf_folder(p)


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in
                                 ("dataset_dict.json", "state.json", "dataset_info.json"))


def read_table(path: Path, field: str = "data.source"):
    """The rows of ``path`` as a ``pyarrow.Table`` (a ``DatasetDict`` with its split names in
    :data:`SPLIT_COLUMN`); one :class:`DataError` sentence for anything unreadable."""
    from .._util.safeio import shown
    if not path.exists():
        raise DataError(f"{field}: {shown(path)} does not exist")
    if path.is_dir():
        return _read_hf(path, field)
    existing_file(path, field)
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    where = f"{field} {shown(path)}"
    try:
        if kind == "Parquet":
            import pyarrow.parquet as pq
            return pq.read_table(path, memory_map=True)
        if kind == "Arrow":
            return _read_ipc(path)
        if kind == "JSON Lines":
            import pyarrow.json as pj
            return pj.read_json(path)
        if kind == "CSV":
            return _read_csv(path)
    except DataError:
        raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... with a readable text
        raise DataError(f"{where} is not a readable {kind} file ({_first_line(e)})") from None
    raise DataError(f"{where} has suffix {path.suffix!r}; expected one of "
                    f"{', '.join(sorted(TABLE_SUFFIXES))}, a Hugging Face dataset folder or "
                    "an image folder")


def _read_csv(path: Path):
    """A CSV file read block by block (types inferred from the first block: a peak of about
    the table plus one block), or, when a later block does not fit those types, whole."""
    import pyarrow as pa
    import pyarrow.csv as pc
    parse = pc.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    try:
        return pc.open_csv(path, parse_options=parse,
                           read_options=pc.ReadOptions(block_size=4 << 20)).read_all()
    except pa.ArrowInvalid:
        return pc.read_csv(path, parse_options=parse)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def _read_ipc(path: Path):
    """An Arrow IPC file (random-access format) or stream (what ``datasets`` writes),
    memory-mapped."""
    import pyarrow as pa
    source = pa.memory_map(str(path))
    try:
        return pa.ipc.open_file(source).read_all()
    except pa.ArrowInvalid:
        source.seek(0)
        return pa.ipc.open_stream(source).read_all()


def _read_hf(path: Path, field: str):
    """A ``save_to_disk`` folder: one ``Dataset`` (``state.json``) or a ``DatasetDict``."""
    from .._util.safeio import shown
    where = f"{field} {shown(path)}"
    if (path / "dataset_dict.json").is_file():
        return _split_tables(path, dict_split_names(path, where), field)
    if (path / "state.json").is_file():
        return _read_shards(path, where)
    raise DataError(f"{where} is a folder without state.json or dataset_dict.json; expected a "
                    "Hugging Face dataset saved with save_to_disk, or an image folder")


def dict_split_names(path: Path, where: str) -> list[str]:
    """The split names a ``DatasetDict`` folder's ``dataset_dict.json`` lists, each one a
    split mentor knows (:data:`SPLIT_NAMES`)."""
    names = _json(path / "dataset_dict.json", where).get("splits")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise DataError(f"{where}: dataset_dict.json has splits {names!r}; expected a list of "
                        "split names")
    unknown = [n for n in names if n not in SPLIT_NAMES]
    if unknown:
        raise DataError(f"{where} has split {unknown[0]!r}; expected split names among "
                        f"{', '.join(SPLIT_NAMES)} (validation is mentor's val)")
    return names


def _split_tables(path: Path, names: list[str], field: str):
    import pyarrow as pa
    from .._util.safeio import shown
    where = f"{field} {shown(path)}"
    tables = []
    for name in names:
        t = _read_shards(path / name, f"{where} split {name!r}")
        tables.append(t.append_column(SPLIT_COLUMN, pa.array([SPLIT_NAMES[name]] * t.num_rows,
                                                             pa.string())))
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid as e:
        raise DataError(f"{where}: its splits have different columns ({_first_line(e)}); "
                        "expected the same columns in every split") from None


def read_shard_names(folder: Path, where: str) -> list[str]:
    """The ``.arrow`` shard names a ``save_to_disk`` folder's ``state.json`` lists, each one
    checked to be a plain file name that exists."""
    state = _json(folder / "state.json", where)
    files = [f.get("filename") for f in state.get("_data_files", []) if isinstance(f, dict)]
    if not files or not all(isinstance(f, str) and "/" not in f and f not in ("", ".", "..")
                            for f in files):
        raise DataError(f"{where}: state.json lists data files {files!r}; expected the .arrow "
                        "shard names save_to_disk writes")
    for name in files:
        if not (folder / name).is_file():
            raise DataError(f"{where}: shard {name!r} listed in state.json is missing")
    return files


def _read_shards(folder: Path, where: str):
    import pyarrow as pa
    tables = []
    for name in read_shard_names(folder, where):
        try:
            tables.append(_read_ipc(folder / name))
        except Exception as e:
            raise DataError(f"{where}: shard {name!r} is not a readable Arrow file "
                            f"({_first_line(e)})") from None
    return pa.concat_tables(tables)


def _json(path: Path, where: str) -> dict:
    from .._util.safeio import MAX_JSON_BYTES, FileProblem, read_bounded
    try:
        data = json.loads(read_bounded(path, MAX_JSON_BYTES, what="a JSON file"))
    except FileProblem as e:
        raise DataError(f"{where}: {e}") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{where}: {path.name} is not readable JSON ({_first_line(e)})") from None
    if not isinstance(data, dict):
        raise DataError(f"{where}: {path.name} holds a {type(data).__name__}; expected an "
                        "object")
    return data


def hf_class_names(path: Path, column: str) -> tuple[str, ...]:
    """The class names a Hugging Face folder's ``dataset_info.json`` gives ``column`` (a
    ``ClassLabel``), else ``()``."""
    if not path.is_dir():
        return ()
    infos = [path / "dataset_info.json"]
    listed = path / "dataset_dict.json"
    if listed.is_file():
        try:
            infos = [path / n / "dataset_info.json" for n in _json(listed, "").get("splits", [])]
        except DataError:
            return ()
    for info in infos:
        if not info.is_file():
            continue
        try:
            feature = _json(info, "").get("features", {}).get(column, {})
        except (DataError, AttributeError):
            continue
        names = feature.get("names") if isinstance(feature, dict) else None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return tuple(names)
    return ()
