"""Names as they are searched: characters or toneless pinyin (姓名拼音).

Two hospitals write the same woman 王晓丽 and 王小丽; a clerk types "wang xiaoli" on a keyboard without an input
method. Both reduce to the same key `wangxiaoli` (pypinyin, the most-used pinyin library, with its phrase
dictionary for polyphonic characters), so a search by either finds her.
"""
from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin

_NOT_LETTERS = re.compile(r"[^a-z]")


def pinyin_key(name: str) -> str:
    """The toneless pinyin of a name, letters only, lower case (ü as v): 王晓丽 → wangxiaoli; "Wáng Xiǎolì" →
    wangxiaoli; a name in Latin letters stays itself (Smith → smith)."""
    syllables = lazy_pinyin(name.strip(), style=Style.NORMAL, v_to_u=False, errors="default")
    latin = "".join(syllables).lower().replace("ü", "v").replace("ǖ", "v").replace("ǘ", "v").replace(
        "ǚ", "v").replace("ǜ", "v")
    bare = "".join(c for c in unicodedata.normalize("NFKD", latin) if not unicodedata.combining(c))
    return _NOT_LETTERS.sub("", bare)


def has_han(text: str) -> bool:
    """Whether a name is written (at least partly) in Chinese characters."""
    return any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)
