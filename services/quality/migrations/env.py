from kit.alembic_env import run

run()
