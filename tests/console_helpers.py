"""Shared by the console's tests: where the test stack's console is, its keys, and reading its pages."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import devstack

from tests.conftest import Stack


def console_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{devstack.console_port(stack.spec)}"


def check_key(stack: Stack) -> bytes:
    return (stack.spec.run_dir / "console-check-key").read_text().strip().encode()


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "the page has no form with a CSRF token"
    return m.group(1)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("src", "href", "action") and v:
                self.refs.append(v)


def references(html: str) -> list[str]:
    """Every src, href and form action of a page."""
    p = _Refs()
    p.feed(html)
    return p.refs
