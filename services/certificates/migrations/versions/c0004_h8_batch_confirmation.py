"""Receiving a batch of blanks takes two people (双人验收入库): the office head records it, a certificate
custodian of the region confirms it; until then its serials cannot be allocated and the stock has not received it.

Batches received before this revision were received by one person under the former rule: their confirmation is
recorded as that person's, at the time they were received, so they stay usable and the stock reports unchanged.

Revision ID: c0004_h8
"""
from alembic import op

revision = "c0004_h8"
down_revision = "c0004_h5"
branch_labels = None
depends_on = None

STATEMENTS = [
    "alter table stock_batch add column confirmed_by text, add column confirmed_at timestamptz",
    "update stock_batch set confirmed_by = recorded_by, confirmed_at = created_at",
    # two different persons, and a confirmation is given once: the database's own last line
    "alter table stock_batch add constraint confirmed_by_another check (confirmed_by is distinct from recorded_by "
    "or confirmed_at = created_at)",
    "create index stock_batch_awaiting on stock_batch (region_code) where confirmed_by is null",
]


def upgrade() -> None:
    for stmt in STATEMENTS:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("drop index stock_batch_awaiting")
    op.execute("alter table stock_batch drop constraint confirmed_by_another")
    op.execute("alter table stock_batch drop column confirmed_at, drop column confirmed_by")
