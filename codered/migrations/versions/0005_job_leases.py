"""job leases (one process at a time runs the policy clock), and indexes for the hot path

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_outbox_kind_created", "outbox", ["kind", "created_at"])
    op.create_index("ix_outbox_incident", "outbox", ["incident_id"])
    op.create_index("ix_inbound_incident", "inbound_messages", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_inbound_incident", table_name="inbound_messages")
    op.drop_index("ix_outbox_incident", table_name="outbox")
    op.drop_index("ix_outbox_kind_created", table_name="outbox")
    op.drop_table("job_leases")
