"""Read the rows of a damaged SQLite file page by page, the way `sqlite3 .recover` does, without SQLite.

SQLite stops a query at the first page it cannot read, and a damaged interior page hides every row under
it: the old repair, which read through SQL, kept 0 of ~1,500 readable rows of a ledger whose `requests`
root page was hit. This reader goes to the bytes instead (https://www.sqlite.org/fileformat2.html):

1. Each table's b-tree is walked from its root page (from `sqlite_master`). Every cell of a leaf page is
   decoded on its own: one garbled cell costs one row, not the page. An interior page tells the rowid
   range of each child, so a child that cannot be read is a known range of lost rowids.
2. Leaf pages no walk reached (under a damaged interior page, or every page when `sqlite_master` itself is
   gone) are decoded too and given to the table whose damaged range and column count they fit.
3. Lost rows are counted per damaged range: the rowids in it that no page accounted for. Rowids of the
   ledger's tables are dense (rows are almost never deleted), so recovered + lost is the number of rows
   that existed. Only the rightmost leaf has no upper bound; its loss is estimated from the table's
   average rows per leaf and marked as an estimate.

Pages on the freelist are never read (they hold deleted rows). Index pages are skipped: the rebuilt file
makes its own indexes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

LEAF, INTERIOR = 0x0D, 0x05
INDEX_LEAF, INDEX_INTERIOR = 0x0A, 0x02


class Bad(Exception):
    """This page or cell cannot be decoded."""


def _varint(b: bytes, i: int) -> tuple[int, int]:
    v = 0
    for k in range(8):
        if i + k >= len(b):
            raise Bad("varint runs off the page")
        c = b[i + k]
        v = (v << 7) | (c & 0x7F)
        if c < 0x80:
            return v, i + k + 1
    if i + 8 >= len(b):
        raise Bad("varint runs off the page")
    return (v << 8) | b[i + 8], i + 9


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def decode_record(payload: bytes) -> list:
    hlen, i = _varint(payload, 0)
    if hlen > len(payload) or hlen < 1:
        raise Bad("record header size")
    types = []
    while i < hlen:
        t, i = _varint(payload, i)
        types.append(t)
    if i != hlen:
        raise Bad("record header overruns")
    out: list = []
    pos = hlen
    for t in types:
        if t == 0:
            out.append(None)
            continue
        if t in (8, 9):
            out.append(t - 8)
            continue
        if t in (10, 11):
            raise Bad("reserved serial type")
        size = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 7: 8}.get(t, (t - 12) // 2 if t >= 12 else 0)
        raw = payload[pos : pos + size]
        if len(raw) != size:
            raise Bad("record body overruns")
        pos += size
        if t <= 6:
            out.append(int.from_bytes(raw, "big", signed=True))
        elif t == 7:
            out.append(struct.unpack(">d", raw)[0])
        elif t % 2 == 0:
            out.append(bytes(raw))
        else:
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise Bad("text is not UTF-8") from None
    if pos != len(payload):
        raise Bad("record size does not match its payload")
    return out


@dataclass
class Damage:
    table: str
    lo: int  # rowids in (lo, hi] were under a page that could not be read
    hi: int | None  # None: the rightmost path, no upper bound known
    leaf: bool  # the damaged page was (probably) a leaf


@dataclass
class TableRows:
    rows: dict[int, list] = field(default_factory=dict)  # rowid -> column values
    bad_cells: int = 0  # cells of readable leaf pages that could not be decoded
    leaves: int = 0


class PageFile:
    def __init__(self, data: bytes) -> None:
        self.data = data
        size = int.from_bytes(data[16:18], "big") if len(data) >= 100 else 0
        size = 65536 if size == 1 else size
        if data[:16] != b"SQLite format 3\x00" or size < 512 or size & (size - 1):
            size = 4096  # the header is gone: SQLite's default page size
        self.page_size = size
        reserved = data[20] if len(data) > 20 and data[:16] == b"SQLite format 3\x00" else 0
        self.usable = size - reserved
        self.pages = len(data) // size
        self.free = self._freelist()
        self.visited: set[int] = set()
        self.damage: list[Damage] = []

    def page(self, n: int) -> bytes:
        if not 1 <= n <= self.pages:
            raise Bad(f"page {n} is outside the file")
        return self.data[(n - 1) * self.page_size : n * self.page_size]

    def _freelist(self) -> set[int]:
        out: set[int] = set()
        try:
            trunk = int.from_bytes(self.data[32:36], "big")
            while trunk and trunk not in out and len(out) <= self.pages:
                out.add(trunk)
                p = self.page(trunk)
                count = int.from_bytes(p[4:8], "big")
                if count > self.usable // 4:
                    break
                out.update(int.from_bytes(p[8 + 4 * i : 12 + 4 * i], "big") for i in range(count))
                trunk = int.from_bytes(p[0:4], "big")
        except Bad:
            pass
        return out

    def _header(self, n: int) -> tuple[bytes, int, int, int]:
        """(page bytes, header offset, page type, cell count)."""
        p = self.page(n)
        off = 100 if n == 1 else 0
        kind = p[off]
        if kind not in (LEAF, INTERIOR):
            raise Bad(f"page {n} is not a table b-tree page")
        ncells = int.from_bytes(p[off + 3 : off + 5], "big")
        hsize = 8 if kind == LEAF else 12
        if off + hsize + 2 * ncells > self.usable:
            raise Bad(f"page {n} has an impossible cell count")
        return p, off, kind, ncells

    def _cell(self, p: bytes, off: int, hsize: int, i: int) -> int:
        at = int.from_bytes(p[off + hsize + 2 * i : off + hsize + 2 * i + 2], "big")
        if not off + hsize <= at < self.usable:
            raise Bad("cell pointer outside the page")
        return at

    def _payload(self, p: bytes, at: int) -> tuple[int, bytes]:
        plen, i = _varint(p, at)
        rowid, i = _varint(p, i)
        u = self.usable
        x = u - 35
        if plen <= x:
            local = plen
        else:
            m = ((u - 12) * 32 // 255) - 23
            k = m + (plen - m) % (u - 4)
            local = k if k <= x else m
        if i + local > u:
            raise Bad("cell overruns the page")
        data = bytearray(p[i : i + local])
        if local < plen:
            nxt = int.from_bytes(p[i + local : i + local + 4], "big")
            seen = set()
            while len(data) < plen:
                if nxt in seen or nxt in self.free:
                    raise Bad("overflow chain loops")
                seen.add(nxt)
                op = self.page(nxt)
                self.visited.add(nxt)
                data += op[4 : min(u, 4 + plen - len(data))]
                nxt = int.from_bytes(op[0:4], "big")
        return _signed(rowid), bytes(data)

    def leaf_rows(self, n: int, ncols: int | None, lo: int, hi: int | None) -> tuple[dict[int, list], int, int]:
        """(rowid -> values, cells that failed, cells on the page) of a leaf page; raises Bad when the page as a
        whole is not believable (most of its cells fail)."""
        p, off, kind, ncells = self._header(n)
        if kind != LEAF:
            raise Bad("not a leaf")
        rows: dict[int, list] = {}
        failed = 0
        for i in range(ncells):
            try:
                rowid, payload = self._payload(p, self._cell(p, off, 8, i))
                if rowid <= lo or (hi is not None and rowid > hi):
                    raise Bad("rowid outside the range its parent gives")
                values = decode_record(payload)
                if ncols is not None and not 1 <= len(values) <= ncols:
                    raise Bad("wrong number of columns")
                rows[rowid] = values
            except Bad:
                failed += 1
        if ncells and failed * 2 > ncells:
            raise Bad(f"page {n}: {failed} of {ncells} cells unreadable")
        return rows, failed, ncells

    def walk(self, table: str, root: int, ncols: int | None, out: TableRows) -> None:
        self._walk(table, root, ncols, out, 0, None, 0)

    def _walk(self, table: str, n: int, ncols: int | None, out: TableRows, lo: int, hi: int | None, depth: int) -> None:
        if n in self.visited or n in self.free or depth > 20:
            self.damage.append(Damage(table, lo, hi, leaf=False))
            return
        self.visited.add(n)
        try:
            p, off, kind, ncells = self._header(n)
            if kind == LEAF:
                rows, failed, _ = self.leaf_rows(n, ncols, lo, hi)
                out.rows.update(rows)
                out.bad_cells += failed
                out.leaves += 1
                return
            children: list[tuple[int, int]] = []
            prev = lo
            for i in range(ncells):
                at = self._cell(p, off, 12, i)
                child = int.from_bytes(p[at : at + 4], "big")
                key, _ = _varint(p, at + 4)
                key = _signed(key)
                if not 1 <= child <= self.pages or key < prev or (hi is not None and key > hi):
                    raise Bad("interior cell out of order")
                children.append((child, key))
                prev = key
            right = int.from_bytes(p[off + 8 : off + 12], "big")
            if not 1 <= right <= self.pages:
                raise Bad("right child outside the file")
        except Bad:
            self.visited.discard(n)  # may still be read as an orphan leaf
            # A damaged page says nothing about itself; below the root, most pages of a table are leaves.
            self.damage.append(Damage(table, lo, hi, leaf=depth > 0))
            return
        prev = lo
        for child, key in children:
            self._walk(table, child, ncols, out, prev, key, depth + 1)
            prev = key
        self._walk(table, right, ncols, out, prev, hi, depth + 1)

    def index_rowids(self, root: int) -> tuple[set[int], bool]:
        """The rowids an index holds (its last column), and whether every page of it could be read. An
        index names every row of its table, so a whole index says exactly which rows existed."""
        ids: set[int] = set()
        whole = True
        stack: list[int] = [root]
        seen: set[int] = set()
        while stack:
            n = stack.pop()
            if n in seen or n in self.free or len(seen) > self.pages:
                whole = False
                continue
            seen.add(n)
            try:
                p = self.page(n)
                off = 100 if n == 1 else 0
                kind = p[off]
                if kind not in (INDEX_LEAF, INDEX_INTERIOR):
                    raise Bad("not an index page")
                hsize = 8 if kind == INDEX_LEAF else 12
                ncells = int.from_bytes(p[off + 3 : off + 5], "big")
                if off + hsize + 2 * ncells > self.usable:
                    raise Bad("impossible cell count")
                found, kids = [], []
                for i in range(ncells):
                    at = self._cell(p, off, hsize, i)
                    if kind == INDEX_INTERIOR:
                        kids.append(int.from_bytes(p[at : at + 4], "big"))
                        at += 4
                    values = decode_record(self._index_payload(p, at))
                    if not values or not isinstance(values[-1], int):
                        raise Bad("index entry without a rowid")
                    found.append(values[-1])
                if kind == INDEX_INTERIOR:
                    kids.append(int.from_bytes(p[off + 8 : off + 12], "big"))
                ids.update(found)
                stack.extend(kids)
                self.visited.add(n)
            except Bad:
                whole = False
        return ids, whole

    def _index_payload(self, p: bytes, at: int) -> bytes:
        plen, i = _varint(p, at)
        u = self.usable
        x = ((u - 12) * 64 // 255) - 23
        if plen > x:
            raise Bad("index entry spills to overflow pages")  # never for the ledger's short keys
        if i + plen > u:
            raise Bad("cell overruns the page")
        return bytes(p[i : i + plen])

    def orphans(self, ncols_of: dict[str, int]) -> list[tuple[int, dict[int, list]]]:
        """Leaf pages no walk reached, decoded (table unknown): (page, rows)."""
        out = []
        for n in range(1, self.pages + 1):
            if n in self.visited or n in self.free:
                continue
            try:
                rows, _failed, _ = self.leaf_rows(n, max(ncols_of.values(), default=None), -(2**63), None)
            except Bad:
                continue
            if rows:
                out.append((n, rows))
        return out


def schema_roots(pf: PageFile) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(table name -> root page, table name -> root pages of its full indexes), read from `sqlite_master`
    (page 1) by the same page reader. Partial indexes (`WHERE …`) do not name every row: left out."""
    got = TableRows()
    pf.walk("sqlite_master", 1, 5, got)
    roots: dict[str, int] = {}
    indexes: dict[str, list[int]] = {}
    for values in got.rows.values():
        if len(values) < 5 or not isinstance(values[2], str) or not isinstance(values[3], int) or values[3] < 1:
            continue
        if values[0] == "table":
            roots[values[2]] = values[3]
        elif values[0] == "index" and " WHERE " not in str(values[4] or "").upper():
            indexes.setdefault(values[2], []).append(values[3])
    pf.damage = [d for d in pf.damage if d.table != "sqlite_master"]
    return roots, indexes


@dataclass
class Recovered:
    rows: dict[str, dict[int, list]]
    lost: dict[str, int]
    estimated: set[str]  # tables whose loss count includes an estimate (a damaged rightmost leaf)
    schema_found: bool  # False: sqlite_master was unreadable, tables were found by their shape alone


def recover(data: bytes, tables: dict[str, int]) -> Recovered:
    """Every readable row of `tables` (name -> its number of columns in the current schema)."""
    pf = PageFile(data)
    roots, indexes = schema_roots(pf)
    found = {t: TableRows() for t in tables}
    for t, ncols in tables.items():
        if t in roots:
            pf.walk(t, roots[t], ncols, found[t])
        else:
            pf.damage.append(Damage(t, 0, None, leaf=False))  # where it lived is unknown
    for t, root in roots.items():  # the other tables (the rollup, rebuilt anyway): their pages are not orphans
        if t not in tables:
            pf.walk(t, root, None, TableRows())
    index_ids: dict[str, tuple[set[int], bool]] = {}
    for t in tables:
        ids, whole = set(), False
        for root in indexes.get(t, []):
            got, complete = pf.index_rowids(root)
            ids |= got
            whole = whole or complete
        index_ids[t] = (ids, whole)
    damaged = {d.table for d in pf.damage if d.table in tables}
    if damaged:
        for _page, rows in pf.orphans(tables):
            _adopt(rows, tables, damaged, pf.damage, found, strict=not roots)
    lost: dict[str, int] = {}
    estimated: set[str] = set()
    for t, tr in found.items():
        ids, whole = index_ids[t]
        ranges = [d for d in pf.damage if d.table == t]
        if whole:
            # A whole index lists every row that existed: the loss is exact, deleted rowids included.
            lost[t] = tr.bad_cells + len(ids - tr.rows.keys())
            continue
        n = tr.bad_cells
        per_leaf = max(1, round(len(tr.rows) / tr.leaves)) if tr.leaves else 1
        for d in ranges:
            inside = [r for r in tr.rows if d.lo < r and (d.hi is None or r <= d.hi)]
            if d.hi is not None:
                n += max(0, d.hi - d.lo - len(inside))
                continue
            # No upper bound: the rowids missing up to the highest one any page or index names; when nothing
            # names one beyond the damaged rightmost leaf, a leaf's worth is assumed and marked estimated.
            named = [r for r in ids if r > d.lo]
            top = max([d.lo, *inside, *named])
            n += max(0, top - d.lo - len(inside))
            if not named:
                n += per_leaf if d.leaf else 0
                estimated.add(t)
        lost[t] = n
    return Recovered({t: tr.rows for t, tr in found.items()}, lost, estimated, bool(roots))


def _adopt(
    rows: dict[int, list],
    tables: dict[str, int],
    damaged: set[str],
    damage: list[Damage],
    found: dict[str, TableRows],
    strict: bool,
) -> None:
    """Give an orphan leaf to the one damaged table whose range and column count fit it (`strict`: the exact
    column count only, when there is no schema to say which pages belong to which table)."""
    widths = {len(v) for v in rows.values()}
    fits = []
    for t in damaged:
        ranges = [d for d in damage if d.table == t]
        if any(w > tables[t] for w in widths):
            continue
        if all(any(d.lo < r and (d.hi is None or r <= d.hi) for d in ranges) for r in rows):
            fits.append(t)
    exact = [t for t in fits if widths == {tables[t]}]
    pick = exact if (exact or strict) else fits
    if len(pick) == 1:
        tr = found[pick[0]]
        tr.leaves += 1
        for r, v in rows.items():
            tr.rows.setdefault(r, v)
