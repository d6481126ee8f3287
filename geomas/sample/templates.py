"""Sentence templates of the synthetic reports, with inline entity markers.

A template is a function of the document context and a random generator that returns one
Russian sentence in which entity spans are marked as ``[[LABEL|span text]]``. `parse_marked`
removes the markers and returns the plain sentence with code-point offsets of every span, so
the gold annotations are computed from exactly the text that goes into the documents.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from geomas.ner.labels import GEO_LABELS
from geomas.sample.vocab import (
    DIRECTIONS_ACC,
    DIRECTIONS_DAT,
    ELEMENT_GEN,
    FUNDS,
    INITIALS,
    JOURNALS,
    PROFILES,
    REGIONS,
    ROMAN,
    STRIKES_GEN,
    SURNAMES,
    Belt,
    Component,
    DepositName,
    District,
    Profile,
    Region,
    Setting,
    fem_oblique,
    masc_genitive,
    num,
)

_MARK = re.compile(r"\[\[([A-Z_]+)\|([^\[\]|]+)\]\]")


@dataclass(frozen=True)
class OreBodyRow:
    """One row of the reserves table: an ore body with its grades and ore tonnage."""

    name: str
    grade0: float
    grade1: float
    ore_kt: float


@dataclass(frozen=True)
class DocContext:
    """Everything one report says consistently in all of its sentences and its table."""

    name: DepositName
    region: Region
    district: District
    settlement: str
    profile: Profile
    formation: str
    ore_type: tuple[str, str]
    belt: Belt
    setting: Setting
    zone: str
    province: str
    suites: tuple[str, str]
    ages: tuple[str, str]
    bodies: tuple[OreBodyRow, ...]
    grade0: float
    grade1: float
    total_ore_kt: float
    total_metal0: float
    years: dict[str, int]
    authors: tuple[str, ...]
    fund: str

    @property
    def c0(self) -> Component:
        """The main component (reserves are counted for it)."""
        return self.profile.main[0]

    @property
    def c1(self) -> Component:
        """The second component of the reserves table."""
        return self.profile.main[1]


Template = Callable[[DocContext, random.Random], str]


def _m(label: str, text: str) -> str:
    """Mark ``text`` as an entity of type ``label``."""
    return f"[[{label}|{text}]]"


def _join(items: list[str]) -> str:
    """Join a Russian enumeration: «a, b и c»."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " и " + items[-1]


def _pick(r: random.Random, pool: tuple[str, ...] | list[str], k_lo: int, k_hi: int) -> list[str]:
    """Pick between ``k_lo`` and ``k_hi`` distinct items of ``pool``, keeping the pool order."""
    k = min(len(pool), r.randint(k_lo, k_hi))
    idx = sorted(r.sample(range(len(pool)), k))
    return [pool[i] for i in idx]


def _author(r: random.Random) -> str:
    a, b = r.sample(INITIALS, 2)
    return f"{r.choice(SURNAMES)} {a}. {b}."


def _range(r: random.Random, lo: float, hi: float, decimals: int) -> tuple[str, str]:
    a = r.uniform(lo, (lo + hi) / 2)
    b = r.uniform(a + (hi - lo) * 0.1, hi)
    return num(a, decimals), num(b, decimals)


# --------------------------------------------------------------------------- templates by type

GI, OC, RP, OF, MI, TE, ST, SC, OB, CO, GD, GC, MC, MS, FC, SI, IS = GEO_LABELS
_ABBREVIATIONS = "GI OC RP OF MI TE ST SC OB CO GD GC MC MS FC SI IS".split()
_LABELS = dict(zip(_ABBREVIATIONS, GEO_LABELS, strict=True))

Slot = Callable[[DocContext, random.Random], object]


def _t(pattern: str, *slots: Slot) -> Template:
    """A template from a `str.format` pattern with ``[[{GI}|…]]``-style entity markers.

    ``{c.…}`` reads the document context, ``{GI}``… are the entity labels and ``{0}``,
    ``{1}``… are the values of ``slots``, computed in their order (so random draws keep it).
    """

    def template(c: DocContext, r: random.Random) -> str:
        return pattern.format(*[slot(c, r) for slot in slots], c=c, **_LABELS)

    return template


def _oc_variation(c: DocContext, r: random.Random) -> str:
    lo, hi = _range(r, c.c1.lo, c.c1.hi * 1.5, c.c1.decimals)
    return (
        "По данным рядового опробования "
        f"{_m(OC, f'содержание {c.c1.gen} варьирует от {lo} до {hi} {c.c1.unit}')}."
    )


# Contained-metal limits (in the component's metal unit) between small, medium and large deposits.
_SCALE_LIMITS: dict[str, tuple[float, float]] = {
    "Au": (15.0, 60.0),
    "Ag": (300.0, 1500.0),
    "Cu": (250.0, 1000.0),
}


def _rp_scale(c: DocContext, r: random.Random) -> str:
    medium, large = _SCALE_LIMITS[c.c0.sym]
    scale = (
        "крупным" if c.total_metal0 > large else "средним" if c.total_metal0 > medium else "мелким"
    )
    return (
        f"По величине запасов месторождение относится к {_m(RP, f'{scale} по масштабу объектам')}."
    )


def _mi_fineness(c: DocContext, r: random.Random) -> str:
    lo = r.randint(560, 760)
    hi = r.randint(lo + 40, 960)
    return f"Установлена {_m(MI, f'пробность самородного золота {lo}–{hi}')}."


def _co_sulfides(c: DocContext, r: random.Random) -> str:
    lo = r.randint(1, 4)
    hi = lo + r.randint(1, 6)
    return f"{_m(CO, f'Содержание сульфидов в рудах составляет {lo}–{hi} %')}."


def _st_section(c: DocContext, r: random.Random) -> str:
    low, high = r.sample(c.profile.hosts, 2)
    return (
        f"Нижнюю часть разреза слагают {_m(ST, f'{low} {c.suites[1]} {c.ages[1]}')}, "
        f"верхнюю – {_m(ST, f'{high} {c.suites[0]}')}."
    )


def _ob_dip(c: DocContext, r: random.Random) -> str:
    a = r.randint(45, 75)
    b = a + r.randint(5, 15)
    return f"Рудные тела {_m(OB, f'падают на {r.choice(DIRECTIONS_ACC)} под углами {a}–{b}°')}."


def _fc_homogenisation(c: DocContext, r: random.Random) -> str:
    lo = r.randint(c.profile.temperature[0], c.profile.temperature[0] + 40)
    hi = r.randint(lo + 40, c.profile.temperature[1])
    span = f"Температуры гомогенизации флюидных включений в кварце составляют {lo}–{hi} °C"
    return f"{_m(FC, span)}."


def _fc_depth(c: DocContext, r: random.Random) -> str:
    lo, hi = _range(r, *c.profile.depth, 1)
    return f"Оруденение сформировалось {_m(FC, f'на глубине {lo}–{hi} км от палеоповерхности')}."


def _fc_salinity(c: DocContext, r: random.Random) -> str:
    lo, hi = _range(r, 0.5, 12.0, 1)
    span = f"Солёность рудообразующих растворов составляет {lo}–{hi} мас. % NaCl-экв."
    return _m(FC, span)


def _fc_pressure(c: DocContext, r: random.Random) -> str:
    lo = r.randint(80, 400)
    hi = lo + r.randint(50, 600)
    return (
        f"Рудоотложение происходило {_m(FC, f'при давлении {lo}–{hi} бар')} "
        "из слабокислых растворов."
    )


def _is_article(c: DocContext, r: random.Random) -> str:
    y = c.years
    year = min(2023, y["detail1"] + r.randint(3, 30))
    p1 = r.randint(3, 120)
    ref = (
        f"{c.authors[2]} Геология и условия формирования {c.name.gen} месторождения // "
        f"{r.choice(JOURNALS)}. {year}. № {r.randint(1, 6)}. С. {p1}–{p1 + r.randint(8, 20)}"
    )
    return f"Геологическое строение объекта описано в работе {_m(IS, ref)}."


def _elements(r: random.Random, c: DocContext, k_lo: int, k_hi: int) -> str:
    """An enumeration of ``k_lo``-``k_hi`` geochemical elements of the profile, in the genitive."""
    return _join([ELEMENT_GEN[e] for e in _pick(r, c.profile.geochem, k_lo, k_hi)])


# The catalogue order matters: a section keeps the templates it draws in this order.
TEMPLATES: dict[str, tuple[Template, ...]] = {
    GI: (
        _t(
            "Месторождение [[{GI}|{c.name.nom}]] расположено в "
            "[[{GI}|{c.district.prep} районе {c.region.gen}]], в {0} км к {1} от "
            "[[{GI}|{c.settlement}]].",
            lambda c, r: r.randint(12, 140),
            lambda c, r: r.choice(DIRECTIONS_DAT),
        ),
        _t(
            "В административном отношении "
            "[[{GI}|{c.name.nom} {c.profile.kind_adj} месторождение]] находится на территории "
            "[[{GI}|{c.district.gen} района {c.region.gen}]]."
        ),
        _t(
            "Географические координаты центра месторождения – "
            "[[{GI}|{0}°{1:02d}′ с. ш., {2}°{3:02d}′ в. д.]]",
            lambda c, r: r.randint(*c.region.lat),
            lambda c, r: r.randint(0, 59),
            lambda c, r: r.randint(*c.region.lon),
            lambda c, r: r.randint(0, 59),
        ),
        _t(
            "Ближайший населённый пункт – [[{GI}|{c.settlement}]], связанный с участком работ "
            "грунтовой дорогой протяжённостью {0} км.",
            lambda c, r: r.randint(20, 180),
        ),
        _t(
            "Площадь лицензионного участка [[{GI}|{c.name.gen} месторождения]] составляет "
            "{0} кв. км.",
            lambda c, r: num(r.uniform(4, 60), 1),
        ),
    ),
    OC: (
        _t(
            "Средние по месторождению содержания составляют: "
            "[[{OC}|{c.c0.gen} {0} {c.c0.unit}]], [[{OC}|{c.c1.gen} {1} {c.c1.unit}]].",
            lambda c, r: num(c.grade0, c.c0.decimals),
            lambda c, r: num(c.grade1, c.c1.decimals),
        ),
        _t(
            "В рудных столбах содержание [[{OC}|{c.c0.gen} достигает {0} {c.c0.unit}]].",
            lambda c, r: num(c.grade0 * r.uniform(3.0, 9.0), c.c0.decimals),
        ),
        _t(
            "Попутными полезными компонентами являются [[{OC}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.associated, 2, 3)),
        ),
        _oc_variation,
        _t(
            "Оконтуривание рудных тел выполнено по "
            "[[{OC}|бортовому содержанию {c.c0.gen} {0} {c.c0.unit}]].",
            lambda c, r: num(c.c0.lo * r.uniform(0.3, 0.8), c.c0.decimals),
        ),
    ),
    RP: (
        _t(
            "Утверждённые [[{RP}|запасы {c.c0.gen} категорий С1+С2 составляют "
            "{0} {c.c0.metal_unit}]].",
            lambda c, r: num(c.total_metal0, 1),
        ),
        _t(
            "[[{RP}|Прогнозные ресурсы {c.c0.gen} категории Р1 оцениваются в "
            "{0} {c.c0.metal_unit}]].",
            lambda c, r: num(c.total_metal0 * r.uniform(0.6, 2.5), 1),
        ),
        _t(
            "На государственном балансе числятся [[{RP}|запасы руды в количестве {0} тыс. т]] "
            "со средним содержанием [[{OC}|{c.c0.gen} {1} {c.c0.unit}]].",
            lambda c, r: num(c.total_ore_kt, 0),
            lambda c, r: num(c.grade0, c.c0.decimals),
        ),
        _rp_scale,
        _t(
            "Ресурсный потенциал флангов оценивается как "
            "[[{RP}|высокий: ресурсы категории Р2 – {0} {c.c0.metal_unit} {c.c0.gen}]].",
            lambda c, r: num(c.total_metal0 * r.uniform(0.3, 1.5), 1),
        ),
    ),
    OF: (
        _t(
            "По формационной принадлежности оруденение относится к [[{OF}|{0} формации]].",
            lambda c, r: fem_oblique(c.formation),
        ),
        _t(
            "Месторождение является типичным представителем [[{OF}|{0} формации]].",
            lambda c, r: fem_oblique(c.formation),
        ),
        _t("В современной классификации объект соответствует [[{OF}|{c.ore_type[1]}]]."),
        _t("Рудная формация – [[{OF}|{c.formation} формация]], [[{OF}|{c.ore_type[0]}]]."),
    ),
    MI: (
        _t(
            "Главные рудные минералы – [[{MI}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.minerals_main, 3, 5)),
        ),
        _t(
            "Второстепенные и редкие минералы представлены видами: [[{MI}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.minerals_minor, 3, 5)),
        ),
        _t(
            "Из жильных минералов преобладают [[{MI}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.gangue, 2, 4)),
        ),
        _mi_fineness,
        _t(
            "Золото преимущественно [[{MI}|тонкое и мелкое, размером от 0,01 до {0} мм]], "
            "образует включения в сульфидах и кварце.",
            lambda c, r: num(r.uniform(0.05, 1.5), 2),
        ),
    ),
    TE: (
        _t(
            "[[{TE}|Извлечение {c.c0.gen} при {1} составляет {0} %]].",
            lambda c, r: num(r.uniform(82.0, 96.5), 1),
            lambda c, r: r.choice(c.profile.recovery_processes),
        ),
        _t(
            "По технологическим свойствам [[{TE}|руды относятся к {0}]].",
            lambda c, r: r.choice(("легкообогатимым", "среднеобогатимым", "умеренно упорным")),
        ),
        _t(
            "Рекомендована [[{TE}|{0} схема переработки]] руд.",
            lambda c, r: r.choice(c.profile.schemes),
        ),
        _t(
            "[[{TE}|Выход гравитационного концентрата составляет {0} %]] при извлечении в "
            "него [[{TE}|{1} % {c.c0.gen}]].",
            lambda c, r: num(r.uniform(1.2, 6.0), 1),
            lambda c, r: num(r.uniform(35.0, 70.0), 1),
        ),
        _t(
            "Содержание вредных примесей [[{TE}|мышьяка и сурьмы в рудах не превышает {0} %]].",
            lambda c, r: num(r.uniform(0.01, 0.3), 2),
        ),
    ),
    ST: (
        _t(
            "Рудовмещающими являются [[{ST}|{0} {c.suites[0]} {c.ages[0]}]].",
            lambda c, r: _join(_pick(r, c.profile.hosts, 2, 3)),
        ),
        _st_section,
        _t("На площади широко развиты [[{ST}|{0}]].", lambda c, r: r.choice(c.profile.intrusions)),
        _t(
            "В составе толщи преобладают [[{ST}|{0} {c.ages[0]}]], "
            "видимая мощность которой достигает {1} м.",
            lambda c, r: _join(_pick(r, c.profile.hosts, 2, 2)),
            lambda c, r: r.randint(300, 1800),
        ),
    ),
    SC: (
        _t(
            "Месторождение приурочено к "
            "[[{SC}|{c.district.fem_obl} вулкано-тектонической депрессии]]."
        ),
        _t(
            "Рудоконтролирующими являются [[{SC}|разломы {0} простирания]].",
            lambda c, r: r.choice(STRIKES_GEN),
        ),
        _t(
            "Главной структурой участка является [[{SC}|{c.district.masc} грабен шириной {0} км]].",
            lambda c, r: num(r.uniform(1.5, 9.0), 1),
        ),
        _t(
            "[[{SC}|Зона {0} разлома]] контролирует размещение руд.",
            lambda c, r: masc_genitive(c.name.masc),
        ),
        _t(
            "Рудные тела локализованы в [[{SC}|оперяющих трещинах {0} природы]].",
            lambda c, r: r.choice(("сбросо-сдвиговой", "взбросо-сдвиговой", "сдвиговой")),
        ),
    ),
    OB: (
        _t(
            "[[{OB}|{0} {c.bodies[0].name} {c.profile.body.traced} на {1} м "
            "при средней мощности {2} м]].",
            lambda c, r: c.profile.body.nom.capitalize(),
            lambda c, r: r.randint(250, 2400),
            lambda c, r: num(r.uniform(0.6, 12.0), 1),
        ),
        _ob_dip,
        _t(
            "Всего на месторождении выявлено [[{OB}|{0} {c.profile.body.gen_pl}]].",
            lambda c, r: r.randint(5, 20),
        ),
        _t("Морфология рудных тел – [[{OB}|{0}]].", lambda c, r: r.choice(c.profile.morphology)),
        _t(
            "[[{OB}|Оруденение прослежено на глубину {0} м]] от поверхности.",
            lambda c, r: r.randint(150, 900),
        ),
        _t(
            "Истинная [[{OB}|мощность {c.profile.body.gen_pl} изменяется от {0} до {1} м]].",
            lambda c, r: num(r.uniform(0.2, 1.0), 1),
            lambda c, r: num(r.uniform(3.0, 25.0), 1),
        ),
    ),
    CO: (
        _t(
            "По составу выделяются [[{CO}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.compositions, 2, 3)),
        ),
        _t(
            "Преобладают [[{CO}|{0}]], в которых сосредоточено около {1} % запасов.",
            lambda c, r: r.choice(c.profile.compositions),
            lambda c, r: r.randint(60, 90),
        ),
        _co_sulfides,
        _t(
            "Для руд характерны [[{CO}|{0} текстуры]].",
            lambda c, r: _join(_pick(r, c.profile.textures, 2, 3)),
        ),
    ),
    GD: (
        _t("Геодинамическая позиция рудообразования – [[{GD}|{c.setting.nom}]]."),
        _t("Район входит в состав [[{GD}|{c.belt.gen}]]."),
        _t("Формирование рудоносных комплексов происходило в [[{GD}|{c.setting.prep}]]."),
        _t(
            "[[{GD}|{c.belt.nom}]] рассматривается как "
            "[[{GD}|надсубдукционное образование окраинно-континентального типа]]."
        ),
    ),
    GC: (
        _t(
            "Месторождение фиксируется [[{GC}|вторичными ореолами рассеяния {0}]].",
            lambda c, r: _elements(r, c, 3, 4),
        ),
        _t(
            "В донных отложениях выявлены [[{GC}|потоки рассеяния {0}]].",
            lambda c, r: _elements(r, c, 2, 3),
        ),
        _t(
            "По данным литохимического опробования выделена "
            "[[{GC}|комплексная аномалия {0} площадью {1} кв. км]].",
            lambda c, r: "–".join(_pick(r, c.profile.geochem, 3, 4)),
            lambda c, r: num(r.uniform(0.8, 12.0), 1),
        ),
        _t(
            "[[{GC}|Коэффициенты концентрации {0} в ореолах достигают {1}]].",
            lambda c, r: ELEMENT_GEN[r.choice(c.profile.geochem)],
            lambda c, r: r.randint(15, 300),
        ),
    ),
    MC: (
        _t(
            "Месторождение входит в состав [[{MC}|{0} рудного узла]].",
            lambda c, r: masc_genitive(c.name.masc),
        ),
        _t(
            "[[{MC}|{c.district.masc} рудный район]] относится к "
            "[[{MC}|{0} металлогенической зоне]].",
            lambda c, r: fem_oblique(c.zone),
        ),
        _t(
            "В металлогеническом отношении площадь расположена в пределах "
            "[[{MC}|{0} металлогенической провинции]].",
            lambda c, r: fem_oblique(c.province),
        ),
        _t(
            "Рудный узел имеет [[{MC}|{0} металлогеническую специализацию]].",
            lambda c, r: {"Au": "золоторудную", "Ag": "серебряную", "Cu": "медную"}[c.c0.sym],
        ),
    ),
    MS: (
        _t(
            "Во вмещающих породах широко проявлены [[{MS}|{0}]].",
            lambda c, r: _join(_pick(r, c.profile.processes, 2, 3)),
        ),
        _t(
            "Непосредственно к рудным телам приурочены [[{MS}|{0}]].",
            lambda c, r: r.choice(c.profile.metasomatites),
        ),
        _t(
            "На флангах месторождения отмечается [[{MS}|{0}]], в центральной части – [[{MS}|{1}]].",
            lambda c, r: r.sample(c.profile.processes, 2)[0],
            lambda c, r: r.choice(c.profile.metasomatites),
        ),
        _t(
            "Метасоматические изменения: [[{MS}|{0}]].",
            lambda c, r: ", ".join(_pick(r, c.profile.processes, 3, 4)),
        ),
    ),
    FC: (
        _fc_homogenisation,
        _fc_depth,
        _fc_salinity,
        _t(
            "Изотопный возраст оруденения по данным датирования {c.profile.dating_mineral} "
            "составляет [[{FC}|{0} ± {1} млн лет]].",
            lambda c, r: num(r.uniform(*c.profile.age_ma), 1),
            lambda c, r: num(r.uniform(0.2, 2.5), 1),
        ),
        _fc_pressure,
    ),
    SI: (
        _t(
            "Месторождение открыто "
            "[[{SI}|в {c.years[discovery]} г. {c.district.fem_obl} поисковой партией]]."
        ),
        _t(
            "В [[{SI}|{c.years[search0]}–{c.years[search1]} гг. проведены поисковые работы "
            "масштаба {0}]].",
            lambda c, r: r.choice(("1:10 000", "1:25 000", "1:50 000")),
        ),
        _t(
            "[[{SI}|Предварительная разведка выполнялась в "
            "{c.years[prelim0]}–{c.years[prelim1]} гг.]]"
        ),
        _t("[[{SI}|Детальная разведка завершена в {c.years[detail1]} г.]] с подсчётом запасов."),
        _t(
            "За период разведки [[{SI}|объём колонкового бурения составил {0} тыс. пог. м]].",
            lambda c, r: r.randint(8, 160),
        ),
        _t(
            "В {c.years[recent0]}–{c.years[recent1]} гг. "
            "[[{SI}|на флангах месторождения проведены ГРР]] с целью прироста запасов."
        ),
    ),
    IS: (
        _t(
            "Основным источником информации является [[{IS}|«Отчёт о результатах детальной "
            "разведки {c.name.gen} месторождения за {c.years[detail0]}–{c.years[detail1]} гг.» "
            "({0}, {c.years[detail1]})]].",
            lambda c, r: ", ".join(c.authors[:2]),
        ),
        _t(
            "Использована [[{IS}|Государственная геологическая карта Российской Федерации "
            "масштаба 1:200 000, лист {c.region.sheet_prefix}-{0}]].",
            lambda c, r: r.choice(ROMAN),
        ),
        _is_article,
        _t("Фондовые материалы по месторождению хранятся в [[{IS}|{c.fund}]]."),
        _t(
            "Запасы утверждены [[{IS}|протоколом ГКЗ СССР № {0} от {1} г.]]",
            lambda c, r: r.randint(1000, 9999),
            lambda c, r: c.years["detail1"] + 1,
        ),
    ),
}

# --------------------------------------------------------------------------- filler sentences

FILLERS: dict[str, tuple[Template, ...]] = {
    "intro": (
        _t(
            "Рельеф района среднегорный, абсолютные отметки составляют {0}–{1} м.",
            lambda c, r: r.randint(300, 900),
            lambda c, r: r.randint(1000, 1900),
        ),
        _t("Климат района резко континентальный, с продолжительной холодной зимой."),
        _t(
            "Гидросеть представлена ручьями и реками, замерзающими в {0}.",
            lambda c, r: r.choice(("октябре", "ноябре")),
        ),
        _t("Склоны долин покрыты лиственничной тайгой и зарослями кедрового стланика."),
        _t("Снабжение участка осуществляется круглогодично, в том числе вертолётом."),
    ),
    "district": (
        _t("Ниже приводится краткая характеристика геологического строения района."),
        _t(
            "Четвертичные отложения представлены аллювием речных долин и склоновыми образованиями "
            "мощностью до {0} м.",
            lambda c, r: r.randint(3, 25),
        ),
        _t("Степень обнажённости района низкая, коренные выходы встречаются на водоразделах."),
        _t("Структурный план района определяется сочетанием разрывных нарушений разных рангов."),
    ),
    "bodies": (
        _t("Контакты рудных тел с вмещающими породами чёткие, реже постепенные."),
        _t(
            "Рудные тела вскрыты канавами через {0} м и пересечены скважинами на нескольких "
            "горизонтах.",
            lambda c, r: r.choice((20, 40, 50, 80)),
        ),
        _t("Распределение полезных компонентов в рудных телах неравномерное."),
    ),
    "composition": (
        _t("Вещественный состав руд изучен по материалам минералогического опробования."),
        _t(
            "Изучено {0} полированных и {1} прозрачных шлифов.",
            lambda c, r: r.randint(40, 400),
            lambda c, r: r.randint(20, 200),
        ),
        _t("Последовательность минералообразования установлена по взаимоотношениям минералов."),
    ),
    "reserves": (
        _t("Данные подсчёта запасов по рудным телам приведены в таблице 1."),
        _t("Подсчёт запасов выполнен методом геологических блоков."),
        _t(
            "Технологические свойства руд изучены на {0} лабораторных и {1} укрупнённых пробах.",
            lambda c, r: r.randint(3, 12),
            lambda c, r: r.randint(1, 3),
        ),
    ),
    "sources": (
        _t("Список использованных материалов приведён в конце отчёта."),
        _t("При составлении обзора учтены опубликованные и фондовые материалы."),
        _t("Часть первичной документации утрачена, что ограничивает переинтерпретацию данных."),
    ),
}


@dataclass(frozen=True)
class SectionSpec:
    """A report section: heading variants, entity types it must mention, fillers, table."""

    key: str
    headings: tuple[str, ...]
    types: tuple[str, ...]
    has_table: bool = False


SECTIONS: tuple[SectionSpec, ...] = (
    SectionSpec(
        "intro", ("Общие сведения", "Введение", "Общие сведения о месторождении"), (GI, SI)
    ),
    SectionSpec(
        "district",
        ("Геологическое строение района", "Геология и тектоника района", "Геологическая позиция"),
        (ST, SC, GD, MC),
    ),
    SectionSpec(
        "bodies",
        (
            "Рудные тела и околорудные изменения",
            "Геологическое строение месторождения",
            "Рудные тела",
        ),
        (OB, OF, MS),
    ),
    SectionSpec(
        "composition",
        ("Вещественный состав руд", "Минералогия и условия образования руд", "Состав руд"),
        (CO, MI, GC, FC),
    ),
    SectionSpec(
        "reserves",
        ("Качество руд и запасы", "Запасы и технологические свойства руд", "Подсчёт запасов"),
        (OC, RP, TE),
        has_table=True,
    ),
    SectionSpec(
        "sources",
        ("Изученность и источники информации", "История изучения", "Источники информации"),
        (SI, IS),
    ),
)

TITLES: tuple[Callable[[DocContext], str], ...] = (
    lambda c: f"Отчёт о результатах геологоразведочных работ на {c.name.prep} месторождении",
    lambda c: f"Геологическое строение и оценка запасов {c.name.gen} месторождения",
    lambda c: f"{c.name.nom} {c.profile.kind_adj} месторождение ({c.region.nom})",
)

# --------------------------------------------------------------------------- context and parsing


def build_context(r: random.Random, name: DepositName) -> DocContext:
    """Draw one report's consistent facts: place, deposit type, table rows, years, authors.

    Args:
        r: The report's own random generator.
        name: The deposit name, chosen by the caller so names are unique within a corpus.

    Returns:
        The document context every template of this report reads.
    """
    region = r.choice(REGIONS)
    profile = r.choice(PROFILES)
    c0, c1 = profile.main
    names = r.sample(profile.body.names, r.randint(3, 5))
    rows = []
    for body_name in names:
        g0 = r.uniform(c0.lo, c0.hi)
        g1 = r.uniform(c1.lo, c1.hi)
        ore = r.uniform(30.0, 900.0) if c0.unit == "г/т" else r.uniform(8000.0, 90000.0)
        rows.append(
            OreBodyRow(
                name=body_name,
                grade0=round(g0, c0.decimals),
                grade1=round(g1, c1.decimals),
                ore_kt=round(ore, 0),
            )
        )
    total_ore = sum(row.ore_kt for row in rows)
    total_metal0 = sum(c0.metal(row.ore_kt, row.grade0) for row in rows)
    total_metal1 = sum(c1.metal(row.ore_kt, row.grade1) for row in rows)
    years = {"discovery": r.randint(1952, 1986)}
    years["search0"] = years["discovery"] + r.randint(0, 2)
    years["search1"] = years["search0"] + r.randint(2, 5)
    years["prelim0"] = years["search1"] + r.randint(1, 2)
    years["prelim1"] = years["prelim0"] + r.randint(2, 4)
    years["detail0"] = years["prelim1"] + r.randint(1, 2)
    years["detail1"] = years["detail0"] + r.randint(2, 4)
    years["recent0"] = r.randint(max(years["detail1"] + 5, 2000), 2018)
    years["recent1"] = years["recent0"] + r.randint(2, 5)
    suites = r.sample(region.suites, 2)
    ages = r.sample(region.ages, 2)
    return DocContext(
        name=name,
        region=region,
        district=District(r.choice(region.districts)),
        settlement=r.choice(region.settlements),
        profile=profile,
        formation=r.choice(profile.formations),
        ore_type=r.choice(profile.types),
        belt=r.choice(region.belts),
        setting=r.choice(region.settings),
        zone=r.choice(region.zones),
        province=r.choice(region.provinces),
        suites=(suites[0], suites[1]),
        ages=(ages[0], ages[1]),
        bodies=tuple(rows),
        grade0=_avg(c0, total_metal0, total_ore),
        grade1=_avg(c1, total_metal1, total_ore),
        total_ore_kt=total_ore,
        total_metal0=total_metal0,
        years=years,
        authors=tuple(_author(r) for _ in range(3)),
        fund=r.choice((*FUNDS, region.organisation)),
    )


def _avg(component: Component, metal: float, ore_kt: float) -> float:
    """Tonnage-weighted average grade from contained metal (inverse of `Component.metal`)."""
    return metal * 1000.0 / ore_kt if component.unit == "г/т" else metal * 100.0 / ore_kt


def parse_marked(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Strip ``[[LABEL|text]]`` markers and return the plain text with entity offsets.

    Args:
        marked: A sentence or paragraph with entity markers.

    Returns:
        The plain text and a list of ``(start, end, label)`` code-point offsets into it.

    Raises:
        ValueError: A marker names an unknown label, or a stray bracket is left in the text
            (a template bug, not a user error).
    """
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = 0
    length = 0
    for match in _MARK.finditer(marked):
        before = marked[pos : match.start()]
        out.append(before)
        length += len(before)
        label, text = match.group(1), match.group(2)
        if label not in GEO_LABELS:
            raise ValueError(f"unknown entity label {label!r} in template output {marked!r}")
        out.append(text)
        spans.append((length, length + len(text), label))
        length += len(text)
        pos = match.end()
    out.append(marked[pos:])
    plain = "".join(out)
    if "[[" in plain or "]]" in plain:
        raise ValueError(f"unbalanced entity marker in template output {marked!r}")
    return plain, spans


__all__ = [
    "FILLERS",
    "SECTIONS",
    "TEMPLATES",
    "TITLES",
    "DocContext",
    "OreBodyRow",
    "SectionSpec",
    "build_context",
    "parse_marked",
]
