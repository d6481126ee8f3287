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


def _gi_location(c: DocContext, r: random.Random) -> str:
    return (
        f"Месторождение {_m(GI, c.name.nom)} расположено в "
        f"{_m(GI, f'{c.district.prep} районе {c.region.gen}')}, в {r.randint(12, 140)} км "
        f"к {r.choice(DIRECTIONS_DAT)} от {_m(GI, c.settlement)}."
    )


def _gi_admin(c: DocContext, r: random.Random) -> str:
    return (
        f"В административном отношении {_m(GI, f'{c.name.nom} {c.profile.kind_adj} месторождение')}"
        f" находится на территории {_m(GI, f'{c.district.gen} района {c.region.gen}')}."
    )


def _gi_coords(c: DocContext, r: random.Random) -> str:
    lat = f"{r.randint(*c.region.lat)}°{r.randint(0, 59):02d}′ с. ш."
    lon = f"{r.randint(*c.region.lon)}°{r.randint(0, 59):02d}′ в. д."
    return f"Географические координаты центра месторождения – {_m(GI, f'{lat}, {lon}')}"


def _gi_settlement(c: DocContext, r: random.Random) -> str:
    return (
        f"Ближайший населённый пункт – {_m(GI, c.settlement)}, связанный с участком работ "
        f"грунтовой дорогой протяжённостью {r.randint(20, 180)} км."
    )


def _gi_area(c: DocContext, r: random.Random) -> str:
    return (
        f"Площадь лицензионного участка {_m(GI, f'{c.name.gen} месторождения')} составляет "
        f"{num(r.uniform(4, 60), 1)} кв. км."
    )


def _oc_average(c: DocContext, r: random.Random) -> str:
    g0 = num(c.grade0, c.c0.decimals)
    g1 = num(c.grade1, c.c1.decimals)
    return (
        "Средние по месторождению содержания составляют: "
        f"{_m(OC, f'{c.c0.gen} {g0} {c.c0.unit}')}, {_m(OC, f'{c.c1.gen} {g1} {c.c1.unit}')}."
    )


def _oc_max(c: DocContext, r: random.Random) -> str:
    peak = num(c.grade0 * r.uniform(3.0, 9.0), c.c0.decimals)
    return f"В рудных столбах содержание {_m(OC, f'{c.c0.gen} достигает {peak} {c.c0.unit}')}."


def _oc_associated(c: DocContext, r: random.Random) -> str:
    items = _pick(r, c.profile.associated, 2, 3)
    return f"Попутными полезными компонентами являются {_m(OC, _join(items))}."


def _oc_variation(c: DocContext, r: random.Random) -> str:
    lo, hi = _range(r, c.c1.lo, c.c1.hi * 1.5, c.c1.decimals)
    return (
        "По данным рядового опробования "
        f"{_m(OC, f'содержание {c.c1.gen} варьирует от {lo} до {hi} {c.c1.unit}')}."
    )


def _oc_payable(c: DocContext, r: random.Random) -> str:
    cut = num(c.c0.lo * r.uniform(0.3, 0.8), c.c0.decimals)
    return (
        "Оконтуривание рудных тел выполнено по "
        f"{_m(OC, f'бортовому содержанию {c.c0.gen} {cut} {c.c0.unit}')}."
    )


def _rp_reserves(c: DocContext, r: random.Random) -> str:
    span = (
        f"запасы {c.c0.gen} категорий С1+С2 составляют {num(c.total_metal0, 1)} {c.c0.metal_unit}"
    )
    return f"Утверждённые {_m(RP, span)}."


def _rp_p1(c: DocContext, r: random.Random) -> str:
    res = num(c.total_metal0 * r.uniform(0.6, 2.5), 1)
    span = f"Прогнозные ресурсы {c.c0.gen} категории Р1 оцениваются в {res} {c.c0.metal_unit}"
    return f"{_m(RP, span)}."


def _rp_balance(c: DocContext, r: random.Random) -> str:
    ore = num(c.total_ore_kt, 0)
    grade = num(c.grade0, c.c0.decimals)
    return (
        f"На государственном балансе числятся {_m(RP, f'запасы руды в количестве {ore} тыс. т')} "
        f"со средним содержанием {_m(OC, f'{c.c0.gen} {grade} {c.c0.unit}')}."
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


def _rp_flanks(c: DocContext, r: random.Random) -> str:
    res = num(c.total_metal0 * r.uniform(0.3, 1.5), 1)
    return (
        "Ресурсный потенциал флангов оценивается как "
        f"{_m(RP, f'высокий: ресурсы категории Р2 – {res} {c.c0.metal_unit} {c.c0.gen}')}."
    )


def _of_dative(c: DocContext, r: random.Random) -> str:
    return (
        "По формационной принадлежности оруденение относится к "
        f"{_m(OF, f'{fem_oblique(c.formation)} формации')}."
    )


def _of_genitive(c: DocContext, r: random.Random) -> str:
    return (
        "Месторождение является типичным представителем "
        f"{_m(OF, f'{fem_oblique(c.formation)} формации')}."
    )


def _of_type(c: DocContext, r: random.Random) -> str:
    return f"В современной классификации объект соответствует {_m(OF, c.ore_type[1])}."


def _of_nominative(c: DocContext, r: random.Random) -> str:
    return f"Рудная формация – {_m(OF, f'{c.formation} формация')}, {_m(OF, c.ore_type[0])}."


def _mi_main(c: DocContext, r: random.Random) -> str:
    return f"Главные рудные минералы – {_m(MI, _join(_pick(r, c.profile.minerals_main, 3, 5)))}."


def _mi_minor(c: DocContext, r: random.Random) -> str:
    items = _join(_pick(r, c.profile.minerals_minor, 3, 5))
    return f"Второстепенные и редкие минералы представлены видами: {_m(MI, items)}."


def _mi_gangue(c: DocContext, r: random.Random) -> str:
    return f"Из жильных минералов преобладают {_m(MI, _join(_pick(r, c.profile.gangue, 2, 4)))}."


def _mi_fineness(c: DocContext, r: random.Random) -> str:
    lo = r.randint(560, 760)
    hi = r.randint(lo + 40, 960)
    return f"Установлена {_m(MI, f'пробность самородного золота {lo}–{hi}')}."


def _mi_grain(c: DocContext, r: random.Random) -> str:
    size = num(r.uniform(0.05, 1.5), 2)
    return (
        "Золото преимущественно "
        f"{_m(MI, f'тонкое и мелкое, размером от 0,01 до {size} мм')}, "
        "образует включения в сульфидах и кварце."
    )


def _co_types(c: DocContext, r: random.Random) -> str:
    return f"По составу выделяются {_m(CO, _join(_pick(r, c.profile.compositions, 2, 3)))}."


def _co_dominant(c: DocContext, r: random.Random) -> str:
    return (
        f"Преобладают {_m(CO, r.choice(c.profile.compositions))}, в которых сосредоточено "
        f"около {r.randint(60, 90)} % запасов."
    )


def _co_sulfides(c: DocContext, r: random.Random) -> str:
    lo = r.randint(1, 4)
    hi = lo + r.randint(1, 6)
    return f"{_m(CO, f'Содержание сульфидов в рудах составляет {lo}–{hi} %')}."


def _co_textures(c: DocContext, r: random.Random) -> str:
    items = _join(_pick(r, c.profile.textures, 2, 3))
    return f"Для руд характерны {_m(CO, f'{items} текстуры')}."


def _te_recovery(c: DocContext, r: random.Random) -> str:
    rec = num(r.uniform(82.0, 96.5), 1)
    process = r.choice(c.profile.recovery_processes)
    return f"{_m(TE, f'Извлечение {c.c0.gen} при {process} составляет {rec} %')}."


def _te_class(c: DocContext, r: random.Random) -> str:
    cls = r.choice(("легкообогатимым", "среднеобогатимым", "умеренно упорным"))
    return f"По технологическим свойствам {_m(TE, f'руды относятся к {cls}')}."


def _te_scheme(c: DocContext, r: random.Random) -> str:
    return f"Рекомендована {_m(TE, f'{r.choice(c.profile.schemes)} схема переработки')} руд."


def _te_concentrate(c: DocContext, r: random.Random) -> str:
    out = num(r.uniform(1.2, 6.0), 1)
    rec = num(r.uniform(35.0, 70.0), 1)
    return (
        f"{_m(TE, f'Выход гравитационного концентрата составляет {out} %')} при извлечении в "
        f"него {_m(TE, f'{rec} % {c.c0.gen}')}."
    )


def _te_harmful(c: DocContext, r: random.Random) -> str:
    share = num(r.uniform(0.01, 0.3), 2)
    return (
        f"Содержание вредных примесей {_m(TE, f'мышьяка и сурьмы в рудах не превышает {share} %')}."
    )


def _st_hosts(c: DocContext, r: random.Random) -> str:
    rocks = _join(_pick(r, c.profile.hosts, 2, 3))
    return f"Рудовмещающими являются {_m(ST, f'{rocks} {c.suites[0]} {c.ages[0]}')}."


def _st_section(c: DocContext, r: random.Random) -> str:
    low, high = r.sample(c.profile.hosts, 2)
    return (
        f"Нижнюю часть разреза слагают {_m(ST, f'{low} {c.suites[1]} {c.ages[1]}')}, "
        f"верхнюю – {_m(ST, f'{high} {c.suites[0]}')}."
    )


def _st_intrusions(c: DocContext, r: random.Random) -> str:
    return f"На площади широко развиты {_m(ST, r.choice(c.profile.intrusions))}."


def _st_thickness(c: DocContext, r: random.Random) -> str:
    rocks = _join(_pick(r, c.profile.hosts, 2, 2))
    return (
        f"В составе толщи преобладают {_m(ST, f'{rocks} {c.ages[0]}')}, "
        f"видимая мощность которой достигает {r.randint(300, 1800)} м."
    )


def _sc_depression(c: DocContext, r: random.Random) -> str:
    return (
        "Месторождение приурочено к "
        f"{_m(SC, f'{c.district.fem_obl} вулкано-тектонической депрессии')}."
    )


def _sc_faults(c: DocContext, r: random.Random) -> str:
    strike = r.choice(STRIKES_GEN)
    return f"Рудоконтролирующими являются {_m(SC, f'разломы {strike} простирания')}."


def _sc_graben(c: DocContext, r: random.Random) -> str:
    width = num(r.uniform(1.5, 9.0), 1)
    span = f"{c.district.masc} грабен шириной {width} км"
    return f"Главной структурой участка является {_m(SC, span)}."


def _sc_fault_zone(c: DocContext, r: random.Random) -> str:
    return f"{_m(SC, f'Зона {masc_genitive(c.name.masc)} разлома')} контролирует размещение руд."


def _sc_fractures(c: DocContext, r: random.Random) -> str:
    kind = r.choice(("сбросо-сдвиговой", "взбросо-сдвиговой", "сдвиговой"))
    return f"Рудные тела локализованы в {_m(SC, f'оперяющих трещинах {kind} природы')}."


def _ob_main(c: DocContext, r: random.Random) -> str:
    kind = c.profile.body
    length = r.randint(250, 2400)
    thickness = num(r.uniform(0.6, 12.0), 1)
    span = (
        f"{kind.nom.capitalize()} {c.bodies[0].name} {kind.traced} на {length} м "
        f"при средней мощности {thickness} м"
    )
    return f"{_m(OB, span)}."


def _ob_dip(c: DocContext, r: random.Random) -> str:
    a = r.randint(45, 75)
    b = a + r.randint(5, 15)
    return f"Рудные тела {_m(OB, f'падают на {r.choice(DIRECTIONS_ACC)} под углами {a}–{b}°')}."


def _ob_count(c: DocContext, r: random.Random) -> str:
    count = r.randint(5, 20)
    return f"Всего на месторождении выявлено {_m(OB, f'{count} {c.profile.body.gen_pl}')}."


def _ob_morphology(c: DocContext, r: random.Random) -> str:
    return f"Морфология рудных тел – {_m(OB, r.choice(c.profile.morphology))}."


def _ob_depth(c: DocContext, r: random.Random) -> str:
    return f"{_m(OB, f'Оруденение прослежено на глубину {r.randint(150, 900)} м')} от поверхности."


def _ob_thickness(c: DocContext, r: random.Random) -> str:
    lo = num(r.uniform(0.2, 1.0), 1)
    hi = num(r.uniform(3.0, 25.0), 1)
    return f"Истинная {_m(OB, f'мощность {c.profile.body.gen_pl} изменяется от {lo} до {hi} м')}."


def _gd_setting(c: DocContext, r: random.Random) -> str:
    return f"Геодинамическая позиция рудообразования – {_m(GD, c.setting.nom)}."


def _gd_belt(c: DocContext, r: random.Random) -> str:
    return f"Район входит в состав {_m(GD, c.belt.gen)}."


def _gd_prep(c: DocContext, r: random.Random) -> str:
    return f"Формирование рудоносных комплексов происходило в {_m(GD, c.setting.prep)}."


def _gd_subduction(c: DocContext, r: random.Random) -> str:
    return (
        f"{_m(GD, c.belt.nom)} рассматривается как "
        f"{_m(GD, 'надсубдукционное образование окраинно-континентального типа')}."
    )


def _mc_node(c: DocContext, r: random.Random) -> str:
    return f"Месторождение входит в состав {_m(MC, f'{masc_genitive(c.name.masc)} рудного узла')}."


def _mc_zone(c: DocContext, r: random.Random) -> str:
    return (
        f"{_m(MC, f'{c.district.masc} рудный район')} относится к "
        f"{_m(MC, f'{fem_oblique(c.zone)} металлогенической зоне')}."
    )


def _mc_within(c: DocContext, r: random.Random) -> str:
    return (
        "В металлогеническом отношении площадь расположена в пределах "
        f"{_m(MC, f'{fem_oblique(c.province)} металлогенической провинции')}."
    )


def _mc_specialisation(c: DocContext, r: random.Random) -> str:
    spec = {"Au": "золоторудную", "Ag": "серебряную", "Cu": "медную"}[c.c0.sym]
    return f"Рудный узел имеет {_m(MC, f'{spec} металлогеническую специализацию')}."


def _ms_widespread(c: DocContext, r: random.Random) -> str:
    items = _join(_pick(r, c.profile.processes, 2, 3))
    return f"Во вмещающих породах широко проявлены {_m(MS, items)}."


def _ms_metasomatites(c: DocContext, r: random.Random) -> str:
    rocks = r.choice(c.profile.metasomatites)
    return f"Непосредственно к рудным телам приурочены {_m(MS, rocks)}."


def _ms_zoning(c: DocContext, r: random.Random) -> str:
    outer, _ = r.sample(c.profile.processes, 2)
    inner = r.choice(c.profile.metasomatites)
    return (
        f"На флангах месторождения отмечается {_m(MS, outer)}, в центральной части – "
        f"{_m(MS, inner)}."
    )


def _ms_list(c: DocContext, r: random.Random) -> str:
    items = ", ".join(_pick(r, c.profile.processes, 3, 4))
    return f"Метасоматические изменения: {_m(MS, items)}."


def _gc_halo(c: DocContext, r: random.Random) -> str:
    els = _join([ELEMENT_GEN[e] for e in _pick(r, c.profile.geochem, 3, 4)])
    return f"Месторождение фиксируется {_m(GC, f'вторичными ореолами рассеяния {els}')}."


def _gc_streams(c: DocContext, r: random.Random) -> str:
    els = _join([ELEMENT_GEN[e] for e in _pick(r, c.profile.geochem, 2, 3)])
    return f"В донных отложениях выявлены {_m(GC, f'потоки рассеяния {els}')}."


def _gc_anomaly(c: DocContext, r: random.Random) -> str:
    els = "–".join(_pick(r, c.profile.geochem, 3, 4))
    area = num(r.uniform(0.8, 12.0), 1)
    return (
        "По данным литохимического опробования выделена "
        f"{_m(GC, f'комплексная аномалия {els} площадью {area} кв. км')}."
    )


def _gc_concentration(c: DocContext, r: random.Random) -> str:
    el = ELEMENT_GEN[r.choice(c.profile.geochem)]
    span = f"Коэффициенты концентрации {el} в ореолах достигают {r.randint(15, 300)}"
    return f"{_m(GC, span)}."


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


def _fc_age(c: DocContext, r: random.Random) -> str:
    age = num(r.uniform(*c.profile.age_ma), 1)
    error = num(r.uniform(0.2, 2.5), 1)
    return (
        f"Изотопный возраст оруденения по данным датирования {c.profile.dating_mineral} составляет "
        f"{_m(FC, f'{age} ± {error} млн лет')}."
    )


def _fc_pressure(c: DocContext, r: random.Random) -> str:
    lo = r.randint(80, 400)
    hi = lo + r.randint(50, 600)
    return (
        f"Рудоотложение происходило {_m(FC, f'при давлении {lo}–{hi} бар')} "
        "из слабокислых растворов."
    )


def _si_discovery(c: DocContext, r: random.Random) -> str:
    span = f"в {c.years['discovery']} г. {c.district.fem_obl} поисковой партией"
    return f"Месторождение открыто {_m(SI, span)}."


def _si_search(c: DocContext, r: random.Random) -> str:
    y = c.years
    scale = r.choice(("1:10 000", "1:25 000", "1:50 000"))
    span = f"{y['search0']}–{y['search1']} гг. проведены поисковые работы масштаба {scale}"
    return f"В {_m(SI, span)}."


def _si_prelim(c: DocContext, r: random.Random) -> str:
    y = c.years
    return _m(SI, f"Предварительная разведка выполнялась в {y['prelim0']}–{y['prelim1']} гг.")


def _si_detail(c: DocContext, r: random.Random) -> str:
    span = f"Детальная разведка завершена в {c.years['detail1']} г."
    return f"{_m(SI, span)} с подсчётом запасов."


def _si_drilling(c: DocContext, r: random.Random) -> str:
    return (
        "За период разведки "
        f"{_m(SI, f'объём колонкового бурения составил {r.randint(8, 160)} тыс. пог. м')}."
    )


def _si_recent(c: DocContext, r: random.Random) -> str:
    y = c.years
    return (
        f"В {y['recent0']}–{y['recent1']} гг. {_m(SI, 'на флангах месторождения проведены ГРР')} "
        "с целью прироста запасов."
    )


def _is_report(c: DocContext, r: random.Random) -> str:
    y = c.years
    authors = ", ".join(c.authors[:2])
    title = (
        f"Отчёт о результатах детальной разведки {c.name.gen} месторождения за "
        f"{y['detail0']}–{y['detail1']} гг."
    )
    span = f"«{title}» ({authors}, {y['detail1']})"
    return f"Основным источником информации является {_m(IS, span)}."


def _is_map(c: DocContext, r: random.Random) -> str:
    sheet = f"{c.region.sheet_prefix}-{r.choice(ROMAN)}"
    span = (
        f"Государственная геологическая карта Российской Федерации масштаба 1:200 000, лист {sheet}"
    )
    return f"Использована {_m(IS, span)}."


def _is_article(c: DocContext, r: random.Random) -> str:
    y = c.years
    year = min(2023, y["detail1"] + r.randint(3, 30))
    p1 = r.randint(3, 120)
    ref = (
        f"{c.authors[2]} Геология и условия формирования {c.name.gen} месторождения // "
        f"{r.choice(JOURNALS)}. {year}. № {r.randint(1, 6)}. С. {p1}–{p1 + r.randint(8, 20)}"
    )
    return f"Геологическое строение объекта описано в работе {_m(IS, ref)}."


def _is_fund(c: DocContext, r: random.Random) -> str:
    return f"Фондовые материалы по месторождению хранятся в {_m(IS, c.fund)}."


def _is_gkz(c: DocContext, r: random.Random) -> str:
    span = f"протоколом ГКЗ СССР № {r.randint(1000, 9999)} от {c.years['detail1'] + 1} г."
    return f"Запасы утверждены {_m(IS, span)}"


TEMPLATES: dict[str, tuple[Template, ...]] = {
    GI: (_gi_location, _gi_admin, _gi_coords, _gi_settlement, _gi_area),
    OC: (_oc_average, _oc_max, _oc_associated, _oc_variation, _oc_payable),
    RP: (_rp_reserves, _rp_p1, _rp_balance, _rp_scale, _rp_flanks),
    OF: (_of_dative, _of_genitive, _of_type, _of_nominative),
    MI: (_mi_main, _mi_minor, _mi_gangue, _mi_fineness, _mi_grain),
    TE: (_te_recovery, _te_class, _te_scheme, _te_concentrate, _te_harmful),
    ST: (_st_hosts, _st_section, _st_intrusions, _st_thickness),
    SC: (_sc_depression, _sc_faults, _sc_graben, _sc_fault_zone, _sc_fractures),
    OB: (_ob_main, _ob_dip, _ob_count, _ob_morphology, _ob_depth, _ob_thickness),
    CO: (_co_types, _co_dominant, _co_sulfides, _co_textures),
    GD: (_gd_setting, _gd_belt, _gd_prep, _gd_subduction),
    GC: (_gc_halo, _gc_streams, _gc_anomaly, _gc_concentration),
    MC: (_mc_node, _mc_zone, _mc_within, _mc_specialisation),
    MS: (_ms_widespread, _ms_metasomatites, _ms_zoning, _ms_list),
    FC: (_fc_homogenisation, _fc_depth, _fc_salinity, _fc_age, _fc_pressure),
    SI: (_si_discovery, _si_search, _si_prelim, _si_detail, _si_drilling, _si_recent),
    IS: (_is_report, _is_map, _is_article, _is_fund, _is_gkz),
}

# --------------------------------------------------------------------------- filler sentences

Filler = Callable[[DocContext, random.Random], str]

FILLERS: dict[str, tuple[Filler, ...]] = {
    "intro": (
        lambda c, r: (
            f"Рельеф района среднегорный, абсолютные отметки составляют "
            f"{r.randint(300, 900)}–{r.randint(1000, 1900)} м."
        ),
        lambda c, r: "Климат района резко континентальный, с продолжительной холодной зимой.",
        lambda c, r: (
            "Гидросеть представлена ручьями и реками, замерзающими в "
            f"{r.choice(('октябре', 'ноябре'))}."
        ),
        lambda c, r: "Склоны долин покрыты лиственничной тайгой и зарослями кедрового стланика.",
        lambda c, r: "Снабжение участка осуществляется круглогодично, в том числе вертолётом.",
    ),
    "district": (
        lambda c, r: "Ниже приводится краткая характеристика геологического строения района.",
        lambda c, r: (
            "Четвертичные отложения представлены аллювием речных долин и склоновыми образованиями "
            f"мощностью до {r.randint(3, 25)} м."
        ),
        lambda c, r: (
            "Степень обнажённости района низкая, коренные выходы встречаются на водоразделах."
        ),
        lambda c, r: (
            "Структурный план района определяется сочетанием разрывных нарушений разных рангов."
        ),
    ),
    "bodies": (
        lambda c, r: "Контакты рудных тел с вмещающими породами чёткие, реже постепенные.",
        lambda c, r: (
            f"Рудные тела вскрыты канавами через {r.choice((20, 40, 50, 80))} м и пересечены "
            "скважинами на нескольких горизонтах."
        ),
        lambda c, r: "Распределение полезных компонентов в рудных телах неравномерное.",
    ),
    "composition": (
        lambda c, r: "Вещественный состав руд изучен по материалам минералогического опробования.",
        lambda c, r: (
            f"Изучено {r.randint(40, 400)} полированных и {r.randint(20, 200)} прозрачных шлифов."
        ),
        lambda c, r: (
            "Последовательность минералообразования установлена по взаимоотношениям минералов."
        ),
    ),
    "reserves": (
        lambda c, r: "Данные подсчёта запасов по рудным телам приведены в таблице 1.",
        lambda c, r: "Подсчёт запасов выполнен методом геологических блоков.",
        lambda c, r: (
            f"Технологические свойства руд изучены на {r.randint(3, 12)} лабораторных и "
            f"{r.randint(1, 3)} укрупнённых пробах."
        ),
    ),
    "sources": (
        lambda c, r: "Список использованных материалов приведён в конце отчёта.",
        lambda c, r: "При составлении обзора учтены опубликованные и фондовые материалы.",
        lambda c, r: (
            "Часть первичной документации утрачена, что ограничивает переинтерпретацию данных."
        ),
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
    discovery = r.randint(1952, 1986)
    search0 = discovery + r.randint(0, 2)
    search1 = search0 + r.randint(2, 5)
    prelim0 = search1 + r.randint(1, 2)
    prelim1 = prelim0 + r.randint(2, 4)
    detail0 = prelim1 + r.randint(1, 2)
    detail1 = detail0 + r.randint(2, 4)
    recent0 = r.randint(max(detail1 + 5, 2000), 2018)
    years = {
        "discovery": discovery,
        "search0": search0,
        "search1": search1,
        "prelim0": prelim0,
        "prelim1": prelim1,
        "detail0": detail0,
        "detail1": detail1,
        "recent0": recent0,
        "recent1": recent0 + r.randint(2, 5),
    }
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
