"""The console's settings (environment, prefix MCH_CONSOLE_ / MCH_): where the four services are, the keys.

Secrets are read from files (the dev stack writes them into its run directory; in production they are mounted
secrets), never from the repository."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MCH_CONSOLE_", extra="ignore")

    registry_url: str = "http://127.0.0.1:8101"
    screening_url: str = "http://127.0.0.1:8102"
    certificates_url: str = "http://127.0.0.1:8103"
    indicators_url: str = "http://127.0.0.1:8104"
    #: the quality service (质控): its port comes after the console's own
    quality_url: str = "http://127.0.0.1:8106"
    #: the address the public reaches the verification page at: what the QR encodes
    public_url: str = "http://127.0.0.1:8105"
    #: signs the session cookie; at least 32 random bytes
    secret_file: Path = Path(".run/console-secret")
    #: the key of the QR check code (HMAC); kept apart from the session key so rotating one leaves the other
    check_key_file: Path = Path(".run/console-check-key")
    #: the console's own system token (role verifier): the public verification page calls with it
    verify_token_file: Path = Path(".run/console-verify-token")
    form_edition: str = "7"
    #: sessions end after this long even if used (a clerk logs in each working day)
    session_max_age_s: int = 12 * 3600
    #: cookies only over HTTPS: on in production behind TLS, off on 127.0.0.1
    secure_cookies: bool = False
    #: public verifications per remote address: sustained per second and at once
    verify_per_second: float = 0.5
    verify_burst: int = 10
    request_timeout_s: float = 15.0

    def secret(self) -> str:
        return _read(self.secret_file, 32)

    def check_key(self) -> bytes:
        return _read(self.check_key_file, 32).encode()

    def verify_token(self) -> str:
        return _read(self.verify_token_file, 8)


def _read(path: Path, min_len: int) -> str:
    value = path.read_text(encoding="utf-8").strip()
    if len(value) < min_len:
        raise RuntimeError(f"{path} holds fewer than {min_len} characters")
    return value


@lru_cache(maxsize=1)
def get_settings() -> ConsoleSettings:
    return ConsoleSettings()
