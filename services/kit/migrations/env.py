from kit.alembic_env import run

run(version_table="kit_alembic_version")
