"""The screening service (domain endpoints arrive with its own issue): health, auth, outbox and topic."""
from kit.app import create_app

app = create_app("screening", [], title="MCH screening")
