"""People act, not strings in a body: custodians are person accounts, batches belong to a region.

- `custodian.staff_id` held whatever string a client sent; it now holds the person's account id
  (`account_id`, the id every actor column records), and `staff_id` is the person's 工号 shown beside the name
  in the register (copied from the account when assigned).
- `stock_batch.region_code`: the region of the office that received the batch (申领入库); the bureau's central
  stock is seen and allocated only within it (object-level region isolation), and the bureau's stock movements
  carry it too, so a region's stock report counts only its own bureau.

Revision ID: c0002
"""
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None

STATEMENTS = [
    "alter table custodian rename column staff_id to account_id",
    "alter table custodian add column staff_id text not null default ''",
    """create or replace function custodian_guard() returns trigger language plpgsql as $$
    begin
        if tg_op = 'DELETE' or old.ended_at is not null or new.ended_at is null
                or (new.institution_code, new.account_id, new.staff_id, new.name, new.role, new.assigned_at,
                    new.assigned_by)
                is distinct from (old.institution_code, old.account_id, old.staff_id, old.name, old.role,
                old.assigned_at, old.assigned_by) then
            raise exception 'custodian history is append-only: an assignment can only be ended, once'
                using errcode = 'P0001';
        end if;
        return new;
    end $$""",
    "create index custodian_account on custodian (account_id) where ended_at is null",
    "alter table stock_batch add column region_code text not null default ''",
    # batches received before: the county of the institutions they were allocated to (received by its office);
    # a batch never allocated stays national ('') until an operator's account allocates it
    """update stock_batch b set region_code = coalesce((select left(a.institution_region, 6) from serial s
        join allocation a using (allocation_id) where s.batch_no = b.batch_no limit 1), '')""",
]


def upgrade() -> None:
    for stmt in STATEMENTS:
        op.execute(stmt)


def downgrade() -> None:
    op.execute("alter table stock_batch drop column region_code")
    op.execute("drop index custodian_account")
    op.execute("alter table custodian drop column staff_id")
    op.execute("alter table custodian rename column account_id to staff_id")
