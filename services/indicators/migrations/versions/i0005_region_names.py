"""Region names for the report tables (填报单位, the township and county rows): GB/T 2260 provinces, cities and
counties from the platform's shipped table (services/registry/data/regions.csv, the same reference data the
registry loads; read here as a file, never from the registry's database), townships and functional areas
(经济开发区, 高新区: administered like counties, not in GB/T 2260) added or renamed one by one
(`PUT /v1/regions/{code}`, `mchctl.py report region`) without replacing the table.

Revision ID: i0005
"""
import csv
from pathlib import Path

from alembic import op
from kit.alembic_env import sql
from sqlalchemy import text

revision = "i0005"
down_revision = "i0004"
branch_labels = None
depends_on = None

GBT2260 = Path(__file__).resolve().parents[3] / "registry" / "data" / "regions.csv"


def upgrade() -> None:
    sql("""
    create table region_name (
        code text collate "C" primary key check (code ~ '^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$'),
        name text not null check (length(name) between 1 and 100),
        kind text not null default 'gbt2260' check (kind in ('gbt2260', 'functional', 'local')),
        updated_by text not null default 'i0005',
        updated_at timestamptz not null default now()
    )
    """)
    if not GBT2260.exists():
        return
    lines = [ln for ln in GBT2260.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    rows = [(r["code"], r["name"]) for r in csv.DictReader(lines) if r.get("code", "").isdigit() and r.get("name")]
    for i in range(0, len(rows), 500):
        chunk = rows[i:i + 500]
        values = ", ".join(f"(:c{j}, :n{j})" for j in range(len(chunk)))
        params = {k: v for j, (c, n) in enumerate(chunk) for k, v in ((f"c{j}", c), (f"n{j}", n))}
        op.get_bind().execute(text(f"insert into region_name (code, name) values {values} "
                                   "on conflict (code) do nothing"), params)


def downgrade() -> None:
    sql("drop table region_name")
