"""The first schema: resources, the store-wide counter, tasks, subtasks and the event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-20

Migrations never import wegent_storage._tables: they describe the schema as it was at their revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSON(), "postgresql")


def _time() -> sa.types.TypeEngine:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    counters = op.create_table(
        "wegent_counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        **MYSQL,
    )
    op.bulk_insert(counters, [{"name": "resource_version", "value": 0}])
    op.create_table(
        "wegent_resources",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("resource_version", sa.BigInteger, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("labels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("body", _json(), nullable=False),
        sa.UniqueConstraint("namespace", "kind", "name", name="uq_wegent_resources_key"),
        **MYSQL,
    )
    op.create_index("ix_wegent_resources_kind", "wegent_resources", ["kind"])
    op.create_table(
        "wegent_tasks",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("namespace", sa.String(253), nullable=False),
        sa.Column("name", sa.String(253), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        **MYSQL,
    )
    op.create_index("ix_wegent_tasks_namespace", "wegent_tasks", ["namespace"])
    op.create_table(
        "wegent_subtasks",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("wegent_tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.UniqueConstraint("task_id", "message_id", name="uq_wegent_subtasks_message"),
        **MYSQL,
    )
    op.create_table(
        "wegent_events",
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
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sqlite_with_rowid=False,
        **MYSQL,
    )


def downgrade() -> None:
    for table in ("wegent_events", "wegent_subtasks", "wegent_tasks", "wegent_resources", "wegent_counters"):
        op.drop_table(table)
