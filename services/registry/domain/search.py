"""A search for persons (人员查询): the criteria as a clerk types them, reduced to the keys they are stored under.

Every criterion narrows (AND). A name in characters matches the same characters or the same toneless pinyin (王晓丽
finds 王小丽: the same sounds, a common clerical variant); a name typed in Latin letters, or `pinyin`, matches the
pinyin (`pinyin` as a prefix: "wang" finds every Wang). Documents are matched in their stored form, whatever their
kind; children by their mother (her person id, or her document number).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from registry.domain import documents, names
from registry.domain.model import fail

#: the most persons one search answers (a search is for finding someone, not for exporting the registry)
MAX_RESULTS = 100


@dataclass(frozen=True)
class PersonSearch:
    name: str | None = None
    pinyin: str | None = None
    document: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    mother: str | None = None
    limit: int = 20

    def criteria(self) -> list[str]:
        """The names of the criteria given (what the audit row records: never their values)."""
        return [k for k in ("name", "pinyin", "document", "birth_date", "phone", "mother")
                if getattr(self, k) not in (None, "")]

    def check(self) -> None:
        if not self.criteria():
            raise fail("name", "give at least one of name, pinyin, document, birth_date, phone, mother")
        if self.pinyin is not None and (names.has_han(self.pinyin) or not names.pinyin_key(self.pinyin)):
            raise fail("pinyin", "pinyin is written in Latin letters (wang xiaoli)")
        if self.name is not None and not self.name.strip():
            raise fail("name", "a name is more than spaces")

    @property
    def name_key(self) -> str | None:
        return names.pinyin_key(self.name) if self.name else None

    @property
    def name_exact(self) -> str | None:
        """The name in characters, matched as written (a name in Latin letters is matched by pinyin only)."""
        return self.name.strip() if self.name and names.has_han(self.name) else None

    @property
    def pinyin_prefix(self) -> str | None:
        return names.pinyin_key(self.pinyin) if self.pinyin else None

    @property
    def document_key(self) -> str | None:
        return documents.search_key(self.document) if self.document else None

    @property
    def phone_key(self) -> str | None:
        return self.phone.strip() if self.phone else None

    def mother_person_id(self) -> str | None:
        """The mother as a person id, when `mother` is one (else it is a document number)."""
        if not self.mother:
            return None
        try:
            return str(uuid.UUID(self.mother))
        except ValueError:
            return None
