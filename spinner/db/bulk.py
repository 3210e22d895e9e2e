"""Many rows, each with its own new values, in one guarded UPDATE statement per chunk.

An `executemany` of an UPDATE is one statement and one round trip per row with the MySQL drivers
(they batch only `INSERT ... VALUES`): in a 1,000-run burst the executor spent a quarter of its
time sending its reports' UPDATEs one row at a time. `BulkUpdate` sends the rows as a derived
table instead (`SELECT :row0_dag_id AS v_dag_id, ... UNION ALL SELECT :row1_dag_id, ...`), joined to the
table on the key columns, with the caller's guard on the table's own columns in the WHERE as
before. SQLAlchemy renders it as a multiple-table UPDATE on MariaDB/MySQL and as
`UPDATE ... FROM` on SQLite (3.33 and newer). Statements are built once per chunk size and kept,
so SQLAlchemy's compiled cache serves every later batch of that size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, Update, and_, bindparam, select, union_all, update

# SQLite refuses a compound SELECT of more than 500 terms; 200 rows keep a statement to a few
# thousand parameters on every backend.
CHUNK = 200


class BulkUpdate:
    """`UPDATE table SET <values from each row> WHERE <keys match the row> AND guard`, for many rows."""

    def __init__(
        self,
        table: Table,
        *,
        keys: Sequence[str],
        values: Sequence[str],
        constants: Mapping[str, Any] | None = None,
        guard: ColumnElement[bool] | None = None,
        chunk: int = CHUNK,
    ) -> None:
        self._table = table
        self._keys = list(keys)
        self._values = list(values)
        self._columns = self._keys + self._values
        self._constants = dict(constants or {})
        self._guard = guard
        self._chunk = chunk
        self._statements: dict[int, Update] = {}

    def statement(self, n: int) -> Update:
        """The statement for `n` rows; its parameters are named `row<index>_<column>`."""
        stmt = self._statements.get(n)
        if stmt is not None:
            return stmt
        c = self._table.c
        rows: list[Select[Any]] = [
            select(*(bindparam(f"row{i}_{name}", type_=c[name].type).label(f"v_{name}") for name in self._columns))
            for i in range(n)
        ]
        derived = (rows[0] if n == 1 else union_all(*rows)).subquery("v")
        match = [c[name] == derived.c[f"v_{name}"] for name in self._keys]
        if self._guard is not None:
            match.append(self._guard)
        stmt = (
            update(self._table)
            .where(and_(*match))
            .values({**{name: derived.c[f"v_{name}"] for name in self._values}, **self._constants})
            .execution_options(synchronize_session=False)
        )
        self._statements[n] = stmt
        return stmt

    async def execute(self, session: Any, rows: Sequence[Mapping[str, Any]]) -> int:
        """Updates every row (an AsyncSession or AsyncConnection); returns how many the guard let through."""
        changed = 0
        for start in range(0, len(rows), self._chunk):
            chunk = rows[start : start + self._chunk]
            params = {f"row{i}_{name}": row[name] for i, row in enumerate(chunk) for name in self._columns}
            result: Any = await session.execute(self.statement(len(chunk)), params)
            count = getattr(result, "rowcount", -1)
            changed += len(chunk) if count is None or count < 0 else int(count)
        return changed
