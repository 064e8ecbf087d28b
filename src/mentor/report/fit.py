"""Tables that fit the console's width without cutting a cell.

rich shrinks a table that is wider than the console by cutting cells with an ellipsis
(``78.66 ± 0.…``, ``met…``). :class:`Fitted` lays a table out at render time instead:

1. the table as it is, when its unbreakable parts fit: a ``no_wrap`` column is as wide as its
   widest cell and its header (failing that, the header wraps at spaces), a wrapping column
   at least as wide as its longest word and :data:`MIN_TEXT` (or its whole text, if
   shorter), the rest of the width shared by the wrapping columns; failing that, the same
   without the outer border;
2. else, without the ``detach`` columns (long free text such as descriptions), which follow
   the table as ``key: text`` lines;
3. else, one block per row (``header  value`` lines), which fits any width a value fits in.

A number or a name is never broken or cut in the first two layouts.
"""

from __future__ import annotations

import copy
from typing import Iterable

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["Fitted"]

MIN_TEXT = 20  # narrower, a wrapping column of prose reads a word or two per line


def _plain(console: Console, cell) -> str:
    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        return console.render_str(cell).plain
    return str(cell)


def _widest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


class Fitted:
    """``table`` rendered at the console's width with no cell cut (see the module).
    ``detach``: headers of free-text columns that may move below the table; ``key``: the
    headers whose cells name a row in those lines (default: the first column)."""

    def __init__(self, table: Table, detach: Iterable[str] = (), key: Iterable[str] = ()):
        self.table = table
        self.detach = tuple(detach)
        self.key = tuple(key)

    def _headers(self) -> list[str]:
        return [str(c.header) for c in self.table.columns]

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        drop = [i for i, h in enumerate(self._headers()) if h in self.detach]
        for cut in ([], drop) if drop else ([],):
            table = _without(self.table, cut) if cut else self.table
            for laid in (_lay_out(table, console, width, whole_headers=True),
                         _lay_out(table, console, width),
                         _lay_out(_edgeless(table), console, width)):
                if laid is not None:
                    yield laid
                    if cut:
                        yield from self._notes(console, cut)
                    return
        yield from _stacked(self.table, console, width)

    def _notes(self, console: Console, drop: list[int]) -> RenderResult:
        """The detached columns as ``key: text`` lines (duplicates once), after a blank line."""
        headers = self._headers()
        keys = [i for i, h in enumerate(headers) if h in self.key] or [0]
        cols = self.table.columns
        n = self.table.row_count
        short = keys[-1:]  # the last key column alone, when that names each text once
        names: dict[str, set[str]] = {}
        for r in range(n):
            name = _plain(console, list(cols[short[0]].cells)[r])
            text = " ".join(_plain(console, list(cols[i].cells)[r]) for i in drop)
            names.setdefault(name, set()).add(text)
        use = short if all(len(v) == 1 for v in names.values()) else keys
        seen: set[str] = set()
        lines = []
        for r in range(n):
            name = " / ".join(_plain(console, list(cols[i].cells)[r]) for i in use)
            for i in drop:
                text = _plain(console, list(cols[i].cells)[r])
                line = f"{name}: {text}" if len(drop) == 1 else f"{name} {headers[i]}: {text}"
                if text and line not in seen:
                    seen.add(line)
                    lines.append(line)
        if lines:
            title = ", ".join(headers[i] for i in drop)
            yield Text(f"{title}:", style="bold")
            for line in lines:
                yield Text(line)


def _without(table: Table, drop: list[int]) -> Table:
    out = copy.copy(table)
    out.columns = [copy.copy(c) for i, c in enumerate(table.columns) if i not in drop]
    out.caption = table.caption
    return out


def _edgeless(table: Table) -> Table:
    """``table`` without its outer border and outer padding (four columns narrower)."""
    out = copy.copy(table)
    out.show_edge, out.pad_edge = False, False
    return out


def _lay_out(table: Table, console: Console, width: int,
             whole_headers: bool = False) -> Table | None:
    """A copy of ``table`` with every column's width fixed so that it fits ``width`` and no
    cell is cut; None when it cannot. ``whole_headers``: a ``no_wrap`` column is also as wide
    as its header (else the header may wrap at spaces)."""
    columns = [copy.copy(c) for c in table.columns]
    fixed, wrap = {}, {}
    for i, col in enumerate(columns):
        cells = [_plain(console, c) for c in col._cells]
        header = _longest_word(str(col.header))
        if whole_headers and col.no_wrap:
            header = _widest_line(str(col.header))
        if col.width is not None:
            fixed[i] = col.width
        elif col.no_wrap:
            fixed[i] = max([header, *map(_widest_line, cells)])
        else:
            hi = max([header, *map(_widest_line, cells)])
            lo = max([header, min(hi, MIN_TEXT), *map(_longest_word, cells)])
            wrap[i] = (lo, max(lo, hi))
    overhead = table._extra_width + sum(table._get_padding_width(i)
                                        for i in range(len(columns)))
    free = width - overhead - sum(fixed.values())
    if free < sum(lo for lo, _ in wrap.values()):
        return None
    widths = dict(fixed)
    widths.update({i: lo for i, (lo, _) in wrap.items()})
    free -= sum(lo for lo, _ in wrap.values())
    grow = {i: hi - lo for i, (lo, hi) in wrap.items() if hi > lo}
    total = sum(grow.values())
    for i, want in grow.items():  # the rest in proportion to what each would take
        add = min(want, free * want // total) if total else 0
        widths[i] += add
    left = free - sum(widths[i] - wrap[i][0] for i in wrap)
    for i in sorted(grow, key=lambda j: -grow[j]):  # rounding leftovers
        add = min(left, wrap[i][1] - widths[i])
        widths[i] += add
        left -= add
    for i, col in enumerate(columns):
        col.width = widths[i]
        col.no_wrap = False  # headers wrap at spaces; cells fit their width by construction
        col.overflow = "fold"  # never "…": a word longer than its column breaks instead
        col.ratio = None
    out = copy.copy(table)
    out.columns = columns
    out.expand = False
    return out


def _stacked(table: Table, console: Console, width: int) -> RenderResult:
    """One block per row: each header beside its value, wrapped at ``width``."""
    if table.title:
        yield Text(str(table.title), style="bold")
    headers = [str(c.header) for c in table.columns]
    key_width = min(max(map(cell_len, headers), default=0), max(width // 3, 1))
    rows = list(zip(*[[_plain(console, c) for c in col._cells] for col in table.columns]))
    for r, values in enumerate(rows):
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=key_width, overflow="fold", style="dim")
        grid.add_column(overflow="fold")
        style = table.rows[r].style if r < len(table.rows) else None
        for h, v in zip(headers, values):
            grid.add_row(Text(h), Text(v, style=style or ""))
        yield Group(Text(""), grid) if r else grid
    if table.caption:
        yield Text("")
        yield Text(str(table.caption))
