"""Tasks count their events (`last_seq`), and finished tasks are found by age through an index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

At 0001 an append took the next sequence number as max(seq) + 1 and relied on the primary key to refuse a duplicate,
so concurrent appenders failed and retried. A counter on the task row, bumped in the appending transaction, hands out
gap-free numbers under concurrency; it starts from the events already logged. `wegent prune` looks finished tasks up
by (status, updated_at).

Migrations never import wegent_storage._tables: they describe the schema as it was at their revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("wegent_tasks", sa.Column("last_seq", sa.BigInteger, nullable=False, server_default="0"))
    op.execute(
        "UPDATE wegent_tasks SET last_seq = COALESCE("
        "(SELECT MAX(e.seq) FROM wegent_events e WHERE e.task_id = wegent_tasks.id), 0)"
    )
    op.create_index("ix_wegent_tasks_status_updated", "wegent_tasks", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_wegent_tasks_status_updated", table_name="wegent_tasks")
    op.drop_column("wegent_tasks", "last_seq")
