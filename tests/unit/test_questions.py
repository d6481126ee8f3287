"""Answer-first questions on real natasha/slovnet parses: each asks for what its answer states."""

from __future__ import annotations

from pathlib import Path

import pytest

from geomas.config import QAConfig
from geomas.ner.extract import EntitySet
from geomas.qa.generate import ChunkRecord, QAGenerator
from geomas.qa.questions import KINDS, QuestionBuilder

GEOLOGY = QAConfig().question_kinds["geology"]
LEGAL = QAConfig().question_kinds["legal"]


@pytest.mark.parametrize(("sentence", "kinds", "question", "focus"), [
    ("Запасы нефти составляют 12,5 млн т.", GEOLOGY, "Каковы запасы нефти?", "12,5 млн т"),
    ("Среднее содержание золота в рудах составляет 4,2 г/т.", GEOLOGY,
     "Каково среднее содержание золота в рудах?", "4,2 г/т"),
    ("Площадь лицензионного участка составляет 17,0 кв. км.", GEOLOGY,
     "Какова площадь лицензионного участка?", None),
    ("Месторождение Граничное расположено в Ханты-Мансийском автономном округе.", GEOLOGY,
     "Где расположено месторождение Граничное?", "в Ханты-Мансийском автономном округе"),
    ("Месторождение открыто в 1958 году.", GEOLOGY, "Когда открыто месторождение?",
     "в 1958 году"),
    ("Продуктивные отложения представлены песчаниками и алевролитами.", GEOLOGY,
     "Чем представлены продуктивные отложения?", "песчаниками и алевролитами"),
    ("Рудное тело приурочено к зоне разлома.", GEOLOGY, "К чему приурочено рудное тело?",
     "к зоне разлома"),
    # slovnet tags a sentence-initial "Оруденение" PROPN; it is still lower-cased
    ("Оруденение приурочено к зоне разлома.", GEOLOGY, "К чему приурочено оруденение?",
     "к зоне разлома"),
    ("Мощность пласта изменяется от 2 до 14 м.", GEOLOGY,
     "В каких пределах изменяется мощность пласта?", "от 2 до 14 м"),
    ("Пласт залегает на глубине 2450 м.", GEOLOGY, "На какой глубине залегает пласт?",
     "на глубине 2450 м"),
    ("Рудная формация - золото-адуляр-кварцевая формация.", GEOLOGY,
     "Какова рудная формация?", "золото-адуляр-кварцевая формация."),
    ("Ширина прохода для людей в выработках должна быть не менее 0,7 м.", LEGAL,
     "Какой должна быть ширина прохода для людей в выработках?", "не менее 0,7 м."),
    # a definition in a geology document (mining rules) is asked as one; a short value is not
    ("Техническое руководство - непосредственное управление технологическими процессами на "
     "производственных объектах, осуществляемое в рамках полномочий.", GEOLOGY,
     "Что означает понятие «техническое руководство»?", None),
    # a list or a name after the dash is a value; a definition says what the thing is and does
    ("Главные рудные минералы - самородное золото, кюстелит, пирит, халькопирит и арсенопирит.",
     GEOLOGY, "Каковы главные рудные минералы?", None),
    ("Ближайший населённый пункт - с. Аян, связанный с участком работ грунтовой дорогой "
     "протяжённостью 93 км.", GEOLOGY, "Каков ближайший населённый пункт?", None),
    ("Тарифная сетка - совокупность тарифных разрядов работ, определенных в зависимости от "
     "сложности работ.", LEGAL, "Что означает понятие «тарифная сетка»?", None),
    ("Предлагать вакансии в других местностях работодатель обязан, если это предусмотрено "
     "коллективным договором.", LEGAL, "Что обязан предлагать работодатель?", None),
    ("Работодатель обязан обеспечить безопасные условия труда.", LEGAL,
     "Что обязан обеспечить работодатель?", "безопасные условия труда"),
    ("1) информационная продукция - предназначенная для оборота на территории Российской "
     "Федерации продукция средств массовой информации;", LEGAL,
     "Что означает понятие «информационная продукция»?", None),
    ("Под рабочим временем понимается время, в течение которого работник должен исполнять "
     "трудовые обязанности.", LEGAL, "Что понимается под рабочим временем?", None),
])
def test_question_is_built_from_the_answer_sentence(
    sentence: str, kinds: tuple[str, ...], question: str, focus: str | None,
) -> None:
    (q,) = QuestionBuilder(kinds).questions(sentence)
    assert q.question == question
    assert sentence[q.sentence[0]:q.sentence[1]].strip() == sentence
    if focus is not None:
        assert sentence[q.focus[0]:q.focus[1]] == focus
    # the question does not give its own answer away
    assert sentence[q.focus[0]:q.focus[1]].strip(" .;") not in q.question


@pytest.mark.parametrize("sentence", [
    "Запасы нефти не составляют 12,5 млн т.",  # negated: a misleading question
    "Они расположены в Ханты-Мансийском автономном округе.",  # who? a pronoun subject
    "12,5 | 13,1 | 0,25 | 707 | 1958",  # table debris
    "Скреперная лебедка должна быть установлена так, чтобы с одной ее стороны оставался "
    "проход шириной не менее 0,7 м.",  # "должна быть установлена": no value is asked for
    "общая защита - реле утечки устанавливается только в одной цепи.",  # a rule, no definition
    "Работы продолжались.",  # nothing informative
    # a clause before a dash is not a term (labour code, art. 59)
    "в отношении работодателей - физических лиц и индивидуальных предпринимателей, "
    "заключивших договоры.",
    # the object is the person told, or half of a light-verb phrase: "Что" cannot ask it
    "Работодатель обязан проинформировать об этом лицо, принимаемое на работу.",
    "При этом принимающая сторона обязана известить работодателя незамедлительно.",
    "Представители сторон обязаны принимать участие в указанных консультациях.",
    # the date belongs to a participle clause, not to "распространяется"
    "Ст. 351.7 распространяется на правоотношения, возникшие с 21.09.2022.",
    # an article title, a duty after a dash, a heading line, an editorial note, a list value
    "Статья 303. Заключение трудового договора с работодателем - физическим лицом.",
    "Работодатель - физическое лицо обязан: оформить трудовой договор с работником;",
    "Сроки введения в действие настоящего Кодекса\nНастоящий Кодекс вводится в действие с 1 "
    "февраля 2002 года.",
    "Общие требования при обработке персональных данных работника и гарантии их защиты\nВ "
    "целях обеспечения прав и свобод человека и гражданина работодатель и его представители "
    "при обработке персональных данных работника обязаны соблюдать следующие общие требования:",
    "Часть вторая утратила силу с 1 сентября 2007 года.",
    "При навеске запасы прочности должны быть не менее:\n13-кратного - для подвесных устройств;",
    # a duty or a value after a dash is no definition; an anaphoric subject asks about no one
    "Работодатель - физическое лицо, не являющийся индивидуальным предпринимателем, при "
    "прекращении договора обязан зарегистрировать факт прекращения договора.",
    "Потери пакетов – не более 0,5% за месяц.",
    "По требованию работодателя данное лицо обязано представить ему копии документов.",
    # "составляются" is "are drawn up", not "amount to"
    "Протоколы об административных правонарушениях составляются должностными лицами органов "
    "в соответствии с пунктами 1-16 статьи 16.3 настоящего Кодекса.",
    # a heading run into its text
    "Нормы труда Нормы труда - нормы выработки, времени и другие нормы труда работников.",
])
def test_no_question_where_none_fits(sentence: str) -> None:
    assert QuestionBuilder(KINDS).questions(sentence) == []


def test_kinds_follow_the_profile() -> None:
    text = "Рудная формация - золото-кварцевая формация."
    assert QuestionBuilder(GEOLOGY).questions(text)[0].kind == "property"
    # a two-word value is no definition: without the property kind it gives no question
    assert QuestionBuilder(("definition",)).questions(text) == []
    longer = ("Рудная формация - устойчивая совокупность руд и вмещающих пород, повторяющаяся "
              "в разных районах.")
    (q,) = QuestionBuilder(("definition",)).questions(longer)
    assert q.question == "Что означает понятие «рудная формация»?"
    assert QuestionBuilder(()).questions(text) == []
    with pytest.raises(ValueError, match="unknown question kinds"):
        QuestionBuilder(("nonsense",))


LAW = ("Статья 20. Основные понятия. Для целей настоящего Кодекса используются следующие "
       "понятия. Работник - физическое лицо, вступившее в трудовые отношения с работодателем. "
       "Работодатель обязан обеспечить безопасные условия и охрану труда. Комиссия по трудовым "
       "спорам обязана рассмотреть индивидуальный трудовой спор в течение десяти календарных "
       "дней со дня подачи работником заявления. Трудовой договор может быть расторгнут "
       "работодателем в случаях ликвидации организации. Статья 21. Права работника. Работник "
       "имеет право на заключение, изменение и расторжение трудового договора в порядке и на "
       "условиях, которые установлены настоящим Кодексом, иными федеральными законами.")


def test_law_gets_legal_answer_first_pairs_and_no_geology_templates() -> None:
    chunks = [ChunkRecord(chunk_id="c1", doc_id="law", text=LAW)]
    res = QAGenerator(config=QAConfig(num_pairs=5)).generate(chunks, EntitySet(model_path=None))
    assert res.profiles["law"]["profile"] == "legal"
    questions = {p.question: p for p in res.pairs}
    assert set(questions) == {"Что означает понятие «работник»?",
                              "Что обязан обеспечить работодатель?",
                              "Что обязана рассмотреть комиссия по трудовым спорам?"}
    for p in res.pairs:
        assert p.generator == "answer_first" and p.entity_type == "LEGAL"
        assert p.answer in p.context and p.answer in LAW
        assert p.entity_text and p.entity_text in p.answer
        assert p.template_id and p.template_id.startswith("answer_first.")


def test_answer_first_labels_pass_the_qa_suite(tmp_path: Path) -> None:
    """The pipeline's validate_qa_pairs knows LEGAL, GENERAL and GEOLOGY (it failed on them)."""
    from geomas.config import ValidationConfig
    from geomas.qa.generate import PAIR_ENTITY_TYPES
    from geomas.validate.records import validate_qa_pairs

    report = ("Месторождение золота расположено в Тенькинском районе Магаданской области. "
              "Рудные тела сложены кварцем, запасы руды учтены. Ширина прохода для людей должна "
              "быть не менее 0,7 м.")
    chunks = [ChunkRecord(chunk_id="c1", doc_id="law", text=LAW),
              ChunkRecord(chunk_id="c2", doc_id="x", text=report)]
    pairs = QAGenerator(config=QAConfig(num_pairs=5)).generate(
        chunks, EntitySet(model_path=None)).pairs
    assert {"LEGAL", "GEOLOGY"} <= {p.entity_type for p in pairs}
    summary = validate_qa_pairs([p.model_dump() for p in pairs], ValidationConfig(policy="warn"),
                                entity_types=PAIR_ENTITY_TYPES, max_context_length=300,
                                report_dir=tmp_path)
    assert summary.success, summary.failed
