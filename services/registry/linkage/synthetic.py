"""A synthetic population with planted duplicates (合成人口): what the matching model is trained and measured on.

Persons have Chinese names drawn from the commonest surnames (weighted roughly by their share) and given names of
one or two characters, many of which have homophones (晓/小, 丽/莉/利, ...), birth dates, a county and village of
residence, a phone for most, a resident ID number (GB 11643, valid check digit) for most, a passport or nothing
for some, and children linked to their mothers. A share of them is registered a second time with what really
goes wrong at a hospital desk: a homophone or a mistyped character, a mistyped or swapped digit in the birth date
or phone, a missing or foreign document, a new village. Each record carries `cluster` — the truth.
"""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from stdnum.cn import ric

# the commonest surnames, weight ≈ share in per mille (公安部 2020 ranking, rounded)
SURNAMES = (
    ("王", 74), ("李", 72), ("张", 69), ("刘", 54), ("陈", 45), ("杨", 32), ("黄", 24), ("赵", 23), ("吴", 20),
    ("周", 20), ("徐", 17), ("孙", 15), ("马", 15), ("朱", 14), ("胡", 13), ("郭", 12), ("何", 12), ("林", 11),
    ("高", 11), ("罗", 11), ("郑", 10), ("梁", 10), ("谢", 8), ("宋", 8), ("唐", 8), ("许", 7), ("韩", 7),
    ("冯", 7), ("邓", 7), ("曹", 6), ("彭", 6), ("曾", 6), ("肖", 6), ("田", 6), ("董", 5), ("潘", 5), ("袁", 5),
    ("蔡", 5), ("蒋", 5), ("余", 5), ("于", 5), ("杜", 5), ("叶", 5), ("程", 4), ("魏", 4), ("苏", 4), ("吕", 4),
    ("丁", 4), ("任", 4), ("卢", 4), ("姚", 4), ("沈", 4), ("钟", 4), ("姜", 4), ("崔", 3), ("谭", 3), ("陆", 3),
    ("范", 3), ("汪", 3), ("廖", 3), ("石", 3), ("金", 3), ("韦", 3), ("贾", 3), ("夏", 3), ("付", 3), ("方", 3),
    ("邹", 3), ("熊", 3), ("白", 3), ("孟", 3), ("秦", 3), ("邱", 3), ("侯", 3), ("江", 3), ("尹", 2), ("薛", 2),
    ("闫", 2), ("段", 2), ("雷", 2), ("龙", 2), ("黎", 2), ("史", 2), ("陶", 2), ("贺", 2), ("毛", 2), ("郝", 2),
    ("顾", 2), ("龚", 2), ("邵", 2), ("万", 2), ("覃", 2), ("武", 2), ("钱", 2), ("戴", 2), ("严", 2), ("欧", 2),
)
FEMALE = ("丽莉秀英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱"
          "妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露"
          "瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽"
          "希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽秀娟敏")
MALE = ("伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发"
        "武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪"
        "心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启"
        "克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘")
#: characters read alike (同音字): the commonest source of two spellings of one name
HOMOPHONES = ("晓小筱", "丽莉利俐", "芳方", "静晶菁", "燕艳雁", "红虹鸿", "玲灵龄", "娟鹃", "婷亭", "霞侠",
              "梅媚玫", "华化", "敏闵", "伟玮炜", "强墙", "军君", "杰洁", "磊蕾", "涛滔", "慧惠蕙", "琳林霖",
              "颖影", "萍平", "英莺瑛", "珍真贞", "秀绣", "芬纷", "兰岚蓝", "云芸耘", "雪学", "佳嘉家", "文雯",
              "欣新馨", "怡仪宜", "瑶遥", "倩茜", "洁杰", "凤峰锋", "春纯")
_HOMO = {c: g for g in HOMOPHONES for c in g}
LATEST_BIRTH = date(2025, 12, 31)
EARLIEST_BIRTH = date(1900, 1, 1)
COUNTIES = ("320582", "320583", "320585", "320506", "320507", "320381", "320382", "320281", "320282", "321181",
            "370102", "370103", "370104", "370105", "440103", "440104", "440105", "440106", "510104", "510105")


@dataclass(frozen=True)
class Record:
    unique_id: int
    cluster: int
    name: str
    sex: str
    birth_date: date
    residence: str
    phone: str | None
    mother_id: str | None
    document: str | None

    @property
    def is_duplicate(self) -> bool:
        return self.unique_id != self.cluster


def resident_id(rng: random.Random, county: str, born: date, sex: str) -> str:
    seq = rng.randrange(0, 50) * 2 + (0 if sex == "F" else 1)
    body = f"{county}{born:%Y%m%d}{rng.randrange(0, 10)}{seq:02d}"
    return body + ric.calc_check_digit(body)


def _name(rng: random.Random, sex: str) -> str:
    surname = rng.choices([s for s, _ in SURNAMES], [w for _, w in SURNAMES])[0]
    pool = FEMALE if sex == "F" else MALE
    return surname + "".join(rng.choice(pool) for _ in range(1 if rng.random() < 0.25 else 2))


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"


def person(rng: random.Random, uid: int, sex: str | None = None, born: date | None = None,
           mother: Record | None = None) -> Record:
    sex = sex or ("F" if rng.random() < 0.7 else "M")  # an MCH register: mostly women, their children
    born = born or date(1965, 1, 1) + timedelta(days=rng.randrange(45 * 365))
    county = mother.residence[:6] if mother else rng.choice(COUNTIES)
    village = f"{county}{rng.randrange(1, 20):03d}{rng.randrange(1, 30):03d}"
    r = rng.random()
    doc = (resident_id(rng, county, born, sex) if r < 0.8 else
           f"E{rng.randrange(10**8):08d}" if r < 0.83 else None)  # a passport (护照) or none yet
    phone = (mother.phone if mother else _phone(rng)) if rng.random() < 0.7 else None
    return Record(uid, uid, _name(rng, sex) if not mother else mother.name[0] + _name(rng, sex)[1:], sex, born,
                  village, phone, str(mother.unique_id) if mother else None, doc)


# ------------------------------------------------------------------ what goes wrong at the desk
def _homophone(rng: random.Random, r: Record) -> Record:
    spots = [i for i, c in enumerate(r.name) if len(_HOMO.get(c, "")) > 1]
    if not spots:
        return _char_typo(rng, r)
    i = rng.choice(spots)
    alt = rng.choice([c for c in _HOMO[r.name[i]] if c != r.name[i]])
    return replace(r, name=r.name[:i] + alt + r.name[i + 1:])


def _char_typo(rng: random.Random, r: Record) -> Record:
    i = rng.randrange(1, len(r.name))
    return replace(r, name=r.name[:i] + rng.choice(FEMALE if r.sex == "F" else MALE) + r.name[i + 1:])


def _digit_typo(s: str, rng: random.Random) -> str:
    i = rng.randrange(len(s))
    if rng.random() < 0.5 and i + 1 < len(s) and s[i] != s[i + 1]:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]  # two digits swapped
    return s[:i] + str((int(s[i]) + rng.randrange(1, 10)) % 10) + s[i + 1:]


def _date_typo(rng: random.Random, r: Record) -> Record:
    for _ in range(20):
        s = _digit_typo(f"{r.birth_date:%Y%m%d}", rng)
        try:
            born = date(int(s[:4]), int(s[4:6]), int(s[6:]))
        except ValueError:
            continue
        if EARLIEST_BIRTH <= born <= LATEST_BIRTH:  # what the registry accepts
            return replace(r, birth_date=born)
    return r


def _phone_typo(rng: random.Random, r: Record) -> Record:
    return replace(r, phone=_digit_typo(r.phone, rng) if r.phone else None)


def _no_document(rng: random.Random, r: Record) -> Record:
    return replace(r, document=None)


def _foreign_document(rng: random.Random, r: Record) -> Record:
    return replace(r, document=f"E{rng.randrange(10**8):08d}")


def _moved(rng: random.Random, r: Record) -> Record:
    return replace(r, residence=f"{r.residence[:6]}{rng.randrange(1, 20):03d}{rng.randrange(1, 30):03d}")


def _no_phone(rng: random.Random, r: Record) -> Record:
    return replace(r, phone=None)


CORRUPTIONS = {"homophone": _homophone, "name typo": _char_typo, "birth date typo": _date_typo,
               "phone typo": _phone_typo, "document missing": _no_document, "foreign document": _foreign_document,
               "moved": _moved, "phone missing": _no_phone}


def duplicate(rng: random.Random, r: Record, uid: int) -> Record:
    """A second registration of `r`: one to three things gone wrong. A quarter keep the document (records from
    another system, as in a batch linkage); the others do not carry it, as in the registry, where an exact
    document match is found before any probabilistic matching."""
    dup = replace(r, unique_id=uid)
    for kind in rng.sample(list(CORRUPTIONS), rng.choice((1, 1, 2, 2, 3))):
        dup = CORRUPTIONS[kind](rng, dup)
    if dup.document is not None and dup.document == r.document and rng.random() < 0.75:
        dup = replace(dup, document=None if rng.random() < 0.5 else f"E{rng.randrange(10**8):08d}")
    return dup


def population(n: int, seed: int = 19, duplicate_share: float = 0.1) -> Iterator[Record]:
    """n originals (a fifth of them children of an earlier woman) and about `duplicate_share` × n duplicates."""
    rng = random.Random(seed)
    mothers: list[Record] = []
    uid = 0
    for _ in range(n):
        uid += 1
        if mothers and rng.random() < 0.2:
            m = rng.choice(mothers)
            born = m.birth_date + timedelta(days=365 * 20 + rng.randrange(20 * 365))
            r = person(rng, uid, born=min(born, LATEST_BIRTH - timedelta(days=rng.randrange(3650))), mother=m)
        else:
            r = person(rng, uid)
            if r.sex == "F" and len(mothers) < 50_000:
                mothers.append(r)
        yield r
        if rng.random() < duplicate_share:
            uid += 1
            yield duplicate(rng, r, uid)
