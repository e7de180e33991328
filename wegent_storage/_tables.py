"""The schema at head, as SQLAlchemy Core tables. Migrations are written out by hand and never import this module's
tables; `tests/storage/test_migrations.py` checks that upgrading to head gives exactly these.

Every table is prefixed `wegent_`, and the migration version table too, so a host application may keep its own
tables (and its own alembic history) in the same database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql

VERSION_TABLE = "wegent_schema_version"
RESOURCE_VERSION = "resource_version"  # the row of wegent_counters behind metadata.resource_version

# Finished tasks are the only ones `prune` may remove.
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "DELETE")

# MySQL/MariaDB: 4-byte UTF-8, and a binary collation so that names compare (and are unique) case-sensitively,
# as on SQLite and PostgreSQL.
MYSQL_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


class RawJson(str):
    """JSON text made by pydantic (`model_dump_json`), bound to a JSON column as it is instead of being re-encoded."""

    __slots__ = ()


def json_dumps(value: Any) -> str:
    """The engines' JSON serializer: passes `RawJson` through, encodes anything else compactly."""
    if isinstance(value, RawJson):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_type() -> sa.types.TypeEngine[Any]:
    # PostgreSQL `json` (not `jsonb`) keeps the text as written, so key order in free-form dicts (env, mcpServers)
    # survives a round trip, as it does in the memory store.
    return sa.JSON().with_variant(postgresql.JSON(), "postgresql")


def labels_type() -> sa.types.TypeEngine[Any]:
    # Labels are only matched, never shown from this column (the body has them in order): jsonb can be indexed.
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def id_type() -> sa.types.TypeEngine[int]:
    # SQLite autoincrements only an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; stored naive (UTC) with microseconds on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"a timezone-aware datetime is needed, got {value!r}")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

counters = sa.Table(
    "wegent_counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
    **MYSQL_OPTIONS,
)

resources = sa.Table(
    "wegent_resources",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("kind", sa.String(63), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    # The store-managed metadata lives in columns, the rest of the resource in `body`.
    sa.Column("resource_version", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("labels", labels_type(), nullable=False),
    sa.Column("body", json_type(), nullable=False),
    sa.UniqueConstraint("namespace", "kind", "name", name="uq_wegent_resources_key"),
    sa.Index("ix_wegent_resources_kind", "kind"),
    **MYSQL_OPTIONS,
)

tasks = sa.Table(
    "wegent_tasks",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("namespace", sa.String(253), nullable=False),
    sa.Column("name", sa.String(253), nullable=True),  # task-<id> once the id is known
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("data", json_type(), nullable=False),  # the rest of the TaskRecord
    # 0002: the last event sequence number handed out, bumped in the transaction that appends.
    sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_wegent_tasks_namespace", "namespace"),
    sa.Index("ix_wegent_tasks_status_updated", "status", "updated_at"),  # 0002: pruning by age
    **MYSQL_OPTIONS,
)

subtasks = sa.Table(
    "wegent_subtasks",
    metadata,
    sa.Column("id", id_type(), primary_key=True, autoincrement=True),
    sa.Column("task_id", sa.BigInteger, sa.ForeignKey("wegent_tasks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("message_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("data", json_type(), nullable=False),  # the rest of the SubtaskRecord
    sa.UniqueConstraint("task_id", "message_id", name="uq_wegent_subtasks_message"),
    **MYSQL_OPTIONS,
)

events = sa.Table(
    "wegent_events",
    metadata,
    sa.Column(
        "task_id",
        sa.BigInteger,
        sa.ForeignKey("wegent_tasks.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("subtask_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("data", json_type(), nullable=False),
    sqlite_with_rowid=False,  # clustered on (task_id, seq), the order events are read in
    **MYSQL_OPTIONS,
)
