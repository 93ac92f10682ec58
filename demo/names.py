"""Fake Chinese names: people, places, roads, and 18-digit citizen ID numbers.

Invented, so the demo holds no real person's data; ID numbers still carry a correct
GB 11643-1999 check digit, because the platform's masking and validation are tested on them.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于"
    "董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
    "玉兰萍红建国志鹏飞宇浩然欣怡子涵晨轩梓雨嘉琪佳博文"
)
VILLAGE_STEMS = "王李张刘陈杨赵黄周吴孙马朱胡郭何高罗宋谢韩冯董曹袁邓许彭苏蔡丁魏薛叶闫牛岳付姚"
VILLAGE_SUFFIXES = (
    "庄村",
    "营村",
    "寨村",
    "楼村",
    "店村",
    "岗村",
    "湾村",
    "集村",
    "沟村",
    "坡村",
    "洼村",
    "屯村",
)
TOWNS = ("辛店镇", "焦店镇", "曹镇乡", "滍阳镇", "常村镇", "尚店镇", "荆山街道", "东高皇街道")
COMMUNITIES = (
    "光明路街道东关社区",
    "光明路街道西关社区",
    "中兴路街道建设社区",
    "中兴路街道和平社区",
    "矿工路街道新华社区",
    "矿工路街道青石社区",
    "曙光街街道湛北社区",
    "曙光街街道五一社区",
    "新新街街道胜利社区",
)
RIVER = "龙河"
TRIBUTARIES = ("北干渠河", "清水河", "南沟河")
RESERVOIRS = ("白龙潭水库", "石门水库")
STREETS_EW = ("建设路", "中兴路", "光明路", "矿工路", "湛河路", "新华路", "开源路", "体育路")
STREETS_NS = ("平安大道", "凌云路", "南环路", "育英路", "五一路", "英才路", "长青路", "胜利街")
COMPANIES = ("天安煤业", "鸿翔煤业", "平安矿业", "豫兴能源", "中原煤业", "宏达矿业")

# GB 11643-1999: weights of the first 17 digits; check character by sum mod 11.
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def id_check_digit(first17: str) -> str:
    """The 18th character of a citizen ID number from its first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need 17 digits, got {first17!r}")
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def is_valid_id_number(text: str) -> bool:
    """True if an 18-character ID number has the right check digit (date not checked)."""
    return len(text) == 18 and text[:17].isdigit() and id_check_digit(text[:17]) == text[17]


def id_number(rng: np.random.Generator, county: str) -> str:
    """A fake ID number registered in a county: born 1950-2000, correct check digit."""
    born = date(1950, 1, 1) + timedelta(days=int(rng.integers(0, 365 * 50)))
    first17 = f"{county}{born:%Y%m%d}{int(rng.integers(0, 1000)):03d}"
    return first17 + id_check_digit(first17)


def person_name(rng: np.random.Generator) -> str:
    surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
    n = 1 if rng.random() < 0.35 else 2
    return surname + "".join(GIVEN[int(i)] for i in rng.integers(len(GIVEN), size=n))


def village_names(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct village names like 王庄村."""
    out: list[str] = []
    while len(out) < n:
        stem = VILLAGE_STEMS[int(rng.integers(len(VILLAGE_STEMS)))]
        name = stem + VILLAGE_SUFFIXES[int(rng.integers(len(VILLAGE_SUFFIXES)))]
        if name not in out:
            out.append(name)
    return out
