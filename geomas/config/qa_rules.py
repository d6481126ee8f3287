"""QA rules kept as data: question kinds per document profile, answer types, NER shift policy.

`QAConfig` holds these (``qa.question_kinds``, ``qa.answer_types``, ``qa.ner_shift``); the
defaults below are the reviewed lexicons — a YAML config replaces any entry.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from geomas.config.base import StrictModel

#: Kinds of answer-first questions (`geomas.qa.questions`), in the order its rules try them.
QuestionKind = Literal[
    "definition", "property", "quantity", "range", "requirement", "place", "depth", "date",
    "composition", "attachment", "duty",
]

#: What an answer must carry besides its lexicon: a number, a number with a unit, a year.
AnswerNeed = Literal["number", "unit", "year"]


class AnswerTypeRule(StrictModel):
    """What an answer to a question about an entity type must carry."""

    lemmas: tuple[str, ...] = Field(
        min_length=1,
        description="The answer holds at least one of these lemmas (lower-case dictionary "
        "forms) or element symbols.",
    )
    needs: tuple[AnswerNeed, ...] = Field(
        default=(), description="number: a digit; unit: a number followed by a unit; "
        "year: a four-digit year.",
    )


class NerShiftConfig(StrictModel):
    """Domain-shift check of the NER model on each document (``qa.ner_shift``)."""

    policy: Literal["skip", "warn", "off"] = Field(
        default="skip",
        description="skip: a document whose entity density is far above the model's own "
        "reference gets no NER-template pairs (answer-first questions stay) and a warning; "
        "warn: only the warning; off: no check.",
    )
    max_ratio: float = Field(
        default=2.0, gt=1.0, le=1000.0,
        description="Density (entities per 1,000 characters) above max_ratio × the model's "
        "reference density counts as domain shift (measured with the demo NER: sample "
        "reports 0.77-1.35, real-ru laws and rules 2.7-3.9).",
    )
    min_chars: int = Field(
        default=2000, ge=0,
        description="Documents with fewer body characters are not judged (too little text).",
    )


def default_question_kinds() -> dict[str, tuple[QuestionKind, ...]]:
    """Answer-first question kinds per profile (see `geomas.qa.questions.KINDS`)."""
    return {
        "geology": ("definition", "property", "quantity", "range", "requirement", "place",
                    "depth", "date", "composition", "attachment"),
        "legal": ("definition", "duty", "requirement", "quantity", "range", "date"),
        "other": ("definition", "quantity", "range", "date", "place", "depth", "composition",
                  "attachment"),
    }


_ELEMENTS = (
    "золото", "серебро", "медь", "цинк", "свинец", "молибден", "вольфрам", "олово", "никель",
    "кобальт", "платина", "палладий", "железо", "марганец", "хром", "титан", "уран", "сурьма",
    "висмут", "ртуть", "литий", "тантал", "ниобий", "бериллий", "германий", "индий", "кадмий",
    "рений", "селен", "теллур", "мышьяк", "сера", "au", "ag", "cu", "zn", "pb", "mo", "w", "sn",
    "ni", "co", "pt", "pd", "fe", "mn", "cr", "ti", "u", "sb", "bi", "hg", "li", "ta", "nb",
)
_MINERALS = (
    "минерал", "кварц", "пирит", "арсенопирит", "халькопирит", "сфалерит", "галенит",
    "пирротин", "магнетит", "гематит", "шеелит", "касситерит", "молибденит", "антимонит",
    "блёклый", "теллурид", "электрум", "карбонат", "кальцит", "адуляр", "серицит", "хлорит",
    "флюорит", "барит", "турмалин", "сульфид", "сульфидный",
)


def default_answer_types() -> dict[str, AnswerTypeRule]:
    """One reviewed lexicon per entity type: what a pair about that type must talk about."""
    r = AnswerTypeRule
    return {
        "GENERAL_INFO": r(lemmas=(
            "месторождение", "район", "область", "край", "округ", "республика", "река",
            "участок", "км", "расположить", "расположенный", "находиться", "площадь",
            "лицензия", "лицензионный", "посёлок", "город", "село", "бассейн", "хребет",
            "нефть", "газ", "открыть", "нефтяной", "газовый",
        )),
        "ORE_COMPONENT": r(lemmas=(*_ELEMENTS, "содержание", "компонент", "г/т"),
                           needs=("number",)),
        "RESOURCE_POTENTIAL": r(lemmas=(
            "запас", "ресурс", "прогнозный", "категория", "балансовый", "забалансовый",
            "ресурсный", "потенциал", "тонна", "т", "кг", "млн", "тыс",
        ), needs=("number",)),
        "ORE_FORMATION": r(lemmas=(
            "формация", "тип", "оруденение", "генетический", "эпитермальный", "мезотермальный",
            "порфировый", "скарновый", "гидротермальный", "сульфидизация", "золото-кварцевый",
        )),
        "MINERALOGICAL": r(lemmas=(
            *_MINERALS, "минеральный", "ассоциация", "парагенезис", "пробность", "самородный",
        )),
        "TECHNOLOGICAL": r(lemmas=(
            "примесь", "вредный",
            "извлечение", "флотация", "обогащение", "цианирование", "гравитационный",
            "концентрат", "технологический", "выщелачивание", "переработка", "схема",
            "обогатимость", "флотационный", "кучный", "сорт", "выход",
        )),
        "STRATIGRAPHY": r(lemmas=(
            "дайка", "порфирит", "интрузия", "интрузивный", "комплекс",
            "отложение", "свита", "толща", "порода", "песчаник", "алевролит", "аргиллит",
            "известняк", "сланец", "гранит", "гранодиорит", "андезит", "базальт", "риолит",
            "туф", "конгломерат", "диорит", "юрский", "меловой", "пермский", "триасовый",
            "палеозойский", "стратиграфический", "разрез", "возраст", "горизонт", "ярус",
        )),
        "STRUCTURAL_TECTONIC": r(lemmas=(
            "разлом", "зона", "структура", "складка", "надвиг", "тектонический", "блок",
            "синклиналь", "антиклиналь", "трещина", "сброс", "сдвиг", "грабен", "купол",
            "структурный", "разрывный",
        )),
        "ORE_BODIES": r(lemmas=(
            "тело", "жила", "залежь", "мощность", "протяжённость", "падение", "простирание",
            "линза", "штокверк", "рудный", "пласт", "м", "длина", "глубина", "залегание",
        )),
        "ORE_COMPOSITION": r(lemmas=(
            "жила", "кварцевый",
            "руда", "состав", "текстура", "структура", "вкрапленный", "прожилковый",
            "массивный", *_MINERALS,
        )),
        "GEODYNAMIC": r(lemmas=(
            "пояс", "складчатый", "система", "вулканический", "надсубдукционный", "плита",
            "геодинамический", "окраина", "обстановка", "субдукция", "коллизия", "рифт",
            "дуга", "островодужный", "континентальный", "аккреционный", "позиция",
        )),
        "GEO_CHEMICAL": r(lemmas=(
            "поток", "рассеяние",
            "ореол", "аномалия", "геохимический", "коэффициент", "концентрация", "фон",
            "элемент", "индикатор", "литохимический", "вторичный", "первичный",
        )),
        "METALLOGENIC_CHAR": r(lemmas=(
            "металлогенический", "зона", "провинция", "пояс", "рудный", "район", "узел",
            "поле", "металлогения",
        )),
        "METASOMATIC": r(lemmas=(
            "метасоматит", "березит", "пропилит", "окварцевание", "серицитизация", "изменение",
            "аргиллизит", "скарн", "лиственит", "метасоматический", "грейзен",
            "березитизация", "пропилитизация", "изменённый", "гидротермальный",
        )),
        "FORMATION_CONDITIONS": r(lemmas=(
            "солёность", "раствор", "рудообразующий", "гомогенизация", "палеоповерхность",
            "температура", "давление", "возраст", "флюид", "формирование", "включение",
            "°c", "млн", "рудообразование", "изотопный", "условие", "глубина",
        )),
        "STUDY_INFO": r(lemmas=(
            "разведка", "поиск", "работа", "скважина", "канава", "изучение", "год", "открыть",
            "грр", "бурение", "съёмка", "опробование", "экспедиция", "партия", "оценка",
            "поисковый", "разведочный", "выполнить", "провести",
        )),
        "INFO_SOURCES": r(lemmas=(
            "работа", "описать", "протокол", "гкз", "утвердить", "геология", "вестник", "журнал",
            "отчёт", "источник", "фонд", "данные", "публикация", "автор", "материал",
            "литература", "росгеолфонд", "тгф",
        )),
    }
