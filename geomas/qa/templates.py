r"""Russian question templates and task descriptions for the 17 geological entity types.

Each type has several question variants so that a dataset built from thousands of entities does
not teach one fixed phrasing. Placeholders:

- ``{entity}``: the entity text (quoted in «»; whitespace collapsed), so the question stays
  grammatical whatever case form the entity is in;
- ``{deposit}``: the deposit name found in the document («Кедровое»); a template with it is
  used only when a name was found.

`TASK_DESCRIPTIONS` are the instruction prefixes of the original instruct format:
``instruction = «<описание задачи>\n\nВопрос: <вопрос>»``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from string import Formatter

#: Question variants per entity type; the template id is ``"<TYPE>.<index>"``.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "GENERAL_INFO": (
        "Где расположено месторождение {deposit}?",
        "Каково административное и географическое положение месторождения?",
        "Какие общие сведения о месторождении приводятся в отчёте?",
        "Что в отчёте сказано о «{entity}»?",
        "В каком районе находится описываемое месторождение и что известно о его местоположении?",
    ),
    "ORE_COMPONENT": (
        "Каковы содержания полезных компонентов на месторождении {deposit}?",
        "Какие содержания полезных компонентов установлены в рудах?",
        "Каковы средние содержания ценных компонентов в руде?",
        "Какие полезные компоненты и в каких концентрациях содержатся в рудах месторождения?",
        "Какие сведения о полезных компонентах руд связаны с «{entity}»?",
    ),
    "RESOURCE_POTENTIAL": (
        "Каковы запасы и прогнозные ресурсы месторождения {deposit}?",
        "Какие запасы полезных ископаемых числятся на месторождении?",
        "Как оценивается ресурсный потенциал месторождения?",
        "Что известно о запасах и ресурсах, указанных как «{entity}»?",
        "Каковы оценки запасов и ресурсов по данным отчёта?",
    ),
    "ORE_FORMATION": (
        "К какой рудной формации относится месторождение {deposit}?",
        "К какому формационному типу относится оруденение?",
        "Какой тип оруденения характерен для месторождения?",
        "Что в отчёте сказано о рудной формации «{entity}»?",
        "Какова формационная принадлежность руд месторождения?",
    ),
    "MINERALOGICAL": (
        "Какие минералы установлены в рудах месторождения {deposit}?",
        "Каков минеральный состав руд?",
        "Какие минералогические признаки характерны для руд месторождения?",
        "Что известно о минералогической характеристике «{entity}»?",
        "Какие рудные и жильные минералы описаны в отчёте?",
    ),
    "TECHNOLOGICAL": (
        "Каковы технологические свойства руд месторождения {deposit}?",
        "Что известно о технологических свойствах руд?",
        "Какие технологические характеристики руд приводятся в отчёте?",
        "Что сказано в отчёте о технологической характеристике «{entity}»?",
        "Каковы результаты технологических исследований руд?",
    ),
    "STRATIGRAPHY": (
        "Какими породами сложен район месторождения {deposit}?",
        "Какие породы и стратиграфические подразделения развиты на площади?",
        "Какие породы описаны в районе месторождения?",
        "Что в отчёте говорится о породах «{entity}»?",
        "Каково геологическое строение разреза района месторождения?",
    ),
    "STRUCTURAL_TECTONIC": (
        "К каким структурам приурочено месторождение {deposit}?",
        "Какова структурно-тектоническая позиция месторождения?",
        "Какие тектонические структуры описаны на месторождении?",
        "Что известно о структуре «{entity}»?",
        "В пределах каких тектонических структур расположен участок работ?",
    ),
    "ORE_BODIES": (
        "Каковы морфология и размеры рудных тел месторождения {deposit}?",
        "Какие рудные тела выявлены на месторождении?",
        "Каковы условия залегания рудных тел?",
        "Что сообщается о рудных телах: «{entity}»?",
        "Что известно о морфологии и параметрах рудных тел?",
    ),
    "ORE_COMPOSITION": (
        "Каков состав руд месторождения {deposit}?",
        "Какие типы руд преобладают на месторождении?",
        "Что известно о составе руд?",
        "Что в отчёте говорится о составе руд: «{entity}»?",
        "Каков вещественный состав руд?",
    ),
    "GEODYNAMIC": (
        "В какой геодинамической обстановке сформировалось месторождение {deposit}?",
        "Какова геодинамическая позиция рудообразования?",
        "Какова геодинамическая характеристика района?",
        "Что сказано в отчёте о геодинамической обстановке «{entity}»?",
        "Какие геодинамические условия характерны для района месторождения?",
    ),
    "GEO_CHEMICAL": (
        "Какие геохимические аномалии выявлены на месторождении {deposit}?",
        "Какими геохимическими ореолами фиксируется месторождение?",
        "Какие геохимические признаки указывают на оруденение?",
        "Что известно о геохимическом признаке «{entity}»?",
        "Какие геохимические данные приводятся для месторождения?",
    ),
    "METALLOGENIC_CHAR": (
        "В какую металлогеническую зону входит месторождение {deposit}?",
        "Какова металлогеническая специализация района?",
        "К каким металлогеническим подразделениям относится площадь месторождения?",
        "Что в отчёте сказано о металлогеническом подразделении «{entity}»?",
        "Какова металлогеническая позиция месторождения?",
    ),
    "METASOMATIC": (
        "Какие метасоматические изменения проявлены на месторождении {deposit}?",
        "Какие околорудные изменения пород отмечаются?",
        "Какие метасоматиты описаны на месторождении?",
        "Где проявлены метасоматические изменения «{entity}»?",
        "Как изменены вмещающие породы на месторождении?",
    ),
    "FORMATION_CONDITIONS": (
        "В каких условиях сформировалось оруденение месторождения {deposit}?",
        "При каких условиях формировалось оруденение?",
        "Что известно об условиях рудоотложения?",
        "Что известно об условиях формирования, указанных как «{entity}»?",
        "Какие физико-химические условия рудообразования установлены?",
    ),
    "STUDY_INFO": (
        "Какие геологоразведочные работы проводились на месторождении {deposit}?",
        "Когда и какими работами изучалось месторождение?",
        "Какова степень изученности месторождения?",
        "Что сообщается в отчёте о работах: «{entity}»?",
        "Что известно об истории изучения месторождения?",
    ),
    "INFO_SOURCES": (
        "Какие источники информации использованы при описании месторождения {deposit}?",
        "На основании каких материалов составлено описание месторождения?",
        "Какие материалы служат источником сведений о месторождении?",
        "Что в отчёте сказано об источнике «{entity}»?",
        "Какие отчёты и публикации служат источниками сведений о месторождении?",
    ),
}

#: Instruction prefix per entity type (the original instruct format's task description).
TASK_DESCRIPTIONS: dict[str, str] = {
    "GENERAL_INFO": "Опиши общие сведения о месторождении: местоположение и инфраструктуру.",
    "ORE_COMPONENT": "Опиши содержания полезных компонентов в руде.",
    "RESOURCE_POTENTIAL": "Опиши запасы и ресурсный потенциал месторождения.",
    "ORE_FORMATION": "Определи рудную формацию и тип оруденения месторождения.",
    "MINERALOGICAL": "Опиши минералогические особенности руд.",
    "TECHNOLOGICAL": "Опиши технологические свойства руд и схему их переработки.",
    "STRATIGRAPHY": "Опиши стратиграфию и породы, слагающие район месторождения.",
    "STRUCTURAL_TECTONIC": "Опиши структурно-тектоническую позицию месторождения.",
    "ORE_BODIES": "Опиши морфологию, размеры и условия залегания рудных тел.",
    "ORE_COMPOSITION": "Опиши вещественный состав руд.",
    "GEODYNAMIC": "Опиши геодинамическую обстановку формирования месторождения.",
    "GEO_CHEMICAL": "Опиши геохимические признаки оруденения.",
    "METALLOGENIC_CHAR": "Опиши металлогеническую позицию и специализацию района.",
    "METASOMATIC": "Опиши метасоматические изменения вмещающих пород.",
    "FORMATION_CONDITIONS": "Опиши условия формирования оруденения.",
    "STUDY_INFO": "Опиши историю и степень изученности месторождения.",
    "INFO_SOURCES": "Укажи источники геологической информации о месторождении.",
    # answer-first pairs that no geological type fits, per document profile (geomas.qa.generate)
    "GEOLOGY": "Ответь на вопрос по фрагменту документа по геологии и недропользованию.",
    "LEGAL": "Ответь на вопрос по фрагменту нормативного правового акта.",
    "GENERAL": "Ответь на вопрос по фрагменту документа.",
}

#: Instruction prefix for an entity type without its own description (custom templates).
DEFAULT_TASK_DESCRIPTION = "Ответь на вопрос по фрагменту геологического отчёта."

#: Share of its answer's characters above which an entity is not put into the question.
ANSWER_IN_QUESTION = 0.6

#: Longest entity text put into a question; longer entities use templates without {entity}.
MAX_ENTITY_IN_QUESTION = 80

_WS = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n.,;:«»\"'"


def placeholders(template: str) -> set[str]:
    """Names of the ``{…}`` fields a template uses."""
    return {name for _, name, _, _ in Formatter().parse(template) if name is not None}


def template_id(label: str, index: int) -> str:
    """Stable id of a template: ``"<TYPE>.<index>"``."""
    return f"{label}.{index}"


def usable_templates(
    variants: Sequence[str], entity_text: str, deposit: str | None, answer_text: str = ""
) -> list[int]:
    """Indices of the variants that can be filled for this entity and document.

    An entity that is most of its answer (``ANSWER_IN_QUESTION`` of its characters) is not put
    into the question: "Что сообщается о работах: «Разведка выполнялась в 1983 г.»?" gives its
    answer away.
    """
    out = []
    gives_away = bool(answer_text) and len(entity_text) >= ANSWER_IN_QUESTION * len(answer_text)
    for k, t in enumerate(variants):
        names = placeholders(t)
        if "deposit" in names and not deposit:
            continue
        if "entity" in names and gives_away:
            continue
        if "entity" in names and not 0 < len(question_entity(entity_text)) <= (
            MAX_ENTITY_IN_QUESTION
        ):
            continue
        out.append(k)
    return out


def question_entity(entity_text: str) -> str:
    """The entity text as put into a question: whitespace collapsed, edge punctuation trimmed."""
    return _WS.sub(" ", entity_text).strip(_EDGE_PUNCT)


def render(template: str, entity_text: str, deposit: str | None) -> str:
    """Fill a template."""
    return template.format(entity=question_entity(entity_text), deposit=deposit or "")


def task_description(label: str, overrides: Mapping[str, str] | None = None) -> str:
    """The instruction prefix for an entity type."""
    if overrides and label in overrides:
        return overrides[label]
    return TASK_DESCRIPTIONS.get(label, DEFAULT_TASK_DESCRIPTION)
