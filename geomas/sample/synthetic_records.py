"""Synthetic Russian geological QA examples with injected near-duplicates, for tests and bench.

Contexts are drawn with the sample corpus's sentence templates (`geomas.sample.templates`): a
"chunk" is 3-12 sentences about one deposit, and each chunk yields 1-3 questions about
different entity types, all sharing the chunk as input (as QA synthesis does). The answer is
the entity span or its sentence, so it is grounded in the input. A share of the records are
then copied with one or two small edits (adjacent words swapped, punctuation changed, a
number changed) and inserted after their original: the near-duplicates a cleaner must remove.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from geomas.formats.example import Example
from geomas.sample.templates import TEMPLATES, build_context, parse_marked
from geomas.sample.vocab import DEPOSIT_NAMES

# Task descriptions and questions per entity type; {nom}/{gen}/{prep} are the deposit name.
_TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "GENERAL_INFO": (
        ("Опиши общие сведения о месторождении.", "Укажи местоположение месторождения."),
        ("Где расположено {nom} месторождение?", "В каком районе находится месторождение?"),
    ),
    "ORE_COMPONENT": (
        ("Опиши содержания полезных компонентов в руде.", "Перечисли полезные компоненты руд."),
        (
            "Каковы содержания полезных компонентов на {prep} месторождении?",
            "Какие содержания металлов установлены в рудах?",
        ),
    ),
    "RESOURCE_POTENTIAL": (
        ("Опиши запасы и ресурсный потенциал месторождения.", "Оцени ресурсы объекта."),
        ("Каковы запасы {gen} месторождения?", "Какие запасы утверждены по месторождению?"),
    ),
    "ORE_FORMATION": (
        ("Определи рудную формацию месторождения.", "Укажи формационный тип оруденения."),
        ("К какой рудной формации относится {nom} месторождение?", "Какова формация руд?"),
    ),
    "MINERALOGICAL": (
        ("Опиши минеральный состав руд.", "Перечисли рудные и жильные минералы."),
        ("Какие минералы установлены на {prep} месторождении?", "Каковы главные минералы?"),
    ),
    "TECHNOLOGICAL": (
        ("Опиши технологические свойства руд.", "Охарактеризуй обогатимость руд."),
        ("Каково извлечение металлов из руд {gen} месторождения?", "Как перерабатываются руды?"),
    ),
    "STRATIGRAPHY": (
        ("Опиши стратиграфию и вмещающие породы.", "Охарактеризуй разрез района."),
        ("Какими породами сложен участок {gen} месторождения?", "Каковы вмещающие породы?"),
    ),
    "STRUCTURAL_TECTONIC": (
        ("Опиши структурно-тектоническую позицию месторождения.", "Опиши тектонику участка."),
        ("К каким структурам приурочено {nom} месторождение?", "Какие разломы контролируют руды?"),
    ),
    "ORE_BODIES": (
        ("Опиши морфологию и залегание рудных тел.", "Охарактеризуй рудные тела."),
        ("Каковы параметры рудных тел {gen} месторождения?", "Как залегают рудные тела?"),
    ),
    "ORE_COMPOSITION": (
        ("Опиши состав руд.", "Перечисли природные типы руд."),
        ("Какие типы руд выделяются на {prep} месторождении?", "Каков состав руд?"),
    ),
    "GEODYNAMIC": (
        ("Опиши геодинамическую обстановку рудообразования.", "Укажи геодинамическую позицию."),
        ("В какой обстановке сформировалось {nom} месторождение?", "Какова геодинамика района?"),
    ),
    "GEO_CHEMICAL": (
        ("Опиши геохимические признаки оруденения.", "Перечисли геохимические аномалии."),
        ("Какими ореолами фиксируется {nom} месторождение?", "Каковы геохимические признаки?"),
    ),
    "METALLOGENIC_CHAR": (
        ("Опиши металлогеническую позицию месторождения.", "Укажи металлогеническую зону."),
        ("В какой рудный узел входит {nom} месторождение?", "Какова металлогения района?"),
    ),
    "METASOMATIC": (
        ("Опиши околорудные метасоматические изменения.", "Перечисли метасоматиты."),
        ("Какие изменения пород проявлены на {prep} месторождении?", "Каковы метасоматиты?"),
    ),
    "FORMATION_CONDITIONS": (
        ("Опиши условия формирования оруденения.", "Укажи физико-химические условия."),
        ("В каких условиях сформировались руды {gen} месторождения?", "Каковы температуры?"),
    ),
    "STUDY_INFO": (
        ("Опиши историю изучения месторождения.", "Кратко изложи изученность объекта."),
        ("Когда и кем открыто {nom} месторождение?", "Какие работы проведены на участке?"),
    ),
    "INFO_SOURCES": (
        ("Назови источники информации о месторождении.", "Укажи использованные материалы."),
        ("Какие отчёты описывают {nom} месторождение?", "Каков основной источник данных?"),
    ),
}
_LEAD_INS = ("", "Ответь на вопрос по тексту. ", "Используя контекст, ответь кратко. ")
_WORD = re.compile(r"[^\W\d_]+")
_NUMBER = re.compile(r"\d+")
_PUNCT = re.compile(r"[,.;:–]")


@dataclass
class SyntheticQA:
    """Generated examples and which of them are injected near-duplicates of which."""

    examples: list[Example]
    near_dup_of: dict[str, str] = field(default_factory=dict)  # injected id -> original id
    edits: dict[str, int] = field(default_factory=dict)  # injected id -> edits applied (1-2)


def _chunk_records(r: random.Random) -> list[tuple[str, str, str, str]]:
    """One chunk's records: ``(label, instruction, input, output)``."""
    ctx = build_context(r, r.choice(DEPOSIT_NAMES))
    catalogue = [(label, t) for label, ts in TEMPLATES.items() for t in ts]
    picked = r.sample(catalogue, r.randint(3, 12))
    sentences: list[tuple[str, list[tuple[int, int, str]]]] = [
        parse_marked(template(ctx, r)) for _, template in picked
    ]
    context = " ".join(text for text, _ in sentences)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for text, spans in sentences:
        for start, end, label in spans:
            by_label.setdefault(label, []).append((text[start:end], text))
    records = []
    for label in r.sample(sorted(by_label), min(len(by_label), r.randint(1, 3))):
        span, sentence = r.choice(by_label[label])
        tasks, questions = _TASKS[label]
        names = {"nom": ctx.name.nom, "gen": ctx.name.gen, "prep": ctx.name.prep}
        question = r.choice(questions).format(**names)
        instruction = f"{r.choice(_LEAD_INS)}{r.choice(tasks)}\n\nВопрос: {question}"
        answer = r.choice((span, sentence, f"{span[0].upper()}{span[1:]}."))
        records.append((label, instruction, context, answer))
    return records


def _edit(r: random.Random, text: str) -> str:
    """One random small edit of `text`; may return it unchanged when the edit does not apply."""
    kind = r.choice(("swap", "punct", "number"))
    if kind == "swap":
        spans = [m.span() for m in _WORD.finditer(text)]
        if len(spans) >= 2:
            k = r.randrange(len(spans) - 1)
            (a0, a1), (b0, b1) = spans[k], spans[k + 1]
            return text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]
    elif kind == "punct":
        marks = list(_PUNCT.finditer(text))
        if marks:
            m = r.choice(marks)
            return text[: m.start()] + r.choice(("", ";", ",", "!")) + text[m.end() :]
    else:
        numbers = list(_NUMBER.finditer(text))
        if numbers:
            m = r.choice(numbers)
            pos = r.randrange(m.start(), m.end())
            digit = str((int(text[pos]) + r.randint(1, 9)) % 10)
            return text[:pos] + digit + text[pos + 1 :]
    return text


def _perturb(r: random.Random, ex: Example) -> tuple[Example, int]:
    """A copy of `ex` with one or two small edits (a real change, never an exact copy)."""
    fields = {"instruction": ex.instruction, "input": ex.input, "output": ex.output}
    wanted, done = r.randint(1, 2), 0
    for _attempt in range(50):
        if done == wanted:
            break
        name = r.choice(("input", "input", "output")) if ex.input else "instruction"
        edited = _edit(r, fields[name])
        if edited != fields[name]:
            fields[name] = edited
            done += 1
    if (fields["instruction"], fields["input"], fields["output"]) == (
        ex.instruction, ex.input, ex.output,
    ):  # no edit applied, or the second one undid the first
        fields["output"] += "!"
        done = 1
    return ex.model_copy(update=fields), done


def synthetic_geology_qa(n: int, *, near_dup_share: float = 0.1, seed: int = 0) -> SyntheticQA:
    """Generate `n` geological QA examples of which about `near_dup_share` are near-dups.

    Args:
        n: Number of examples in all.
        near_dup_share: Share of `n` that are edited copies of earlier examples.
        seed: Random seed; the same arguments give the same examples.

    Returns:
        The examples (ids ``syn-000001``...; label = entity type; group = chunk), the map
        from each injected near-duplicate's id to its original's id, and its edit count.
    """
    r = random.Random(f"geomas-clean-synthetic:{seed}")
    n_dups = round(n * near_dup_share)
    base: list[Example] = []
    chunk = 0
    while len(base) < n - n_dups:
        for label, instruction, context, answer in _chunk_records(r):
            base.append(
                Example(
                    id="tmp",
                    instruction=instruction,
                    input=context,
                    output=answer,
                    label=label,
                    group=f"chunk-{chunk:06d}",
                )
            )
        chunk += 1
    base = base[: n - n_dups]
    picks = (
        r.sample(range(len(base)), n_dups)
        if n_dups <= len(base)
        else [r.randrange(len(base)) for _ in range(n_dups)]
    )
    # (position, key, example, key of the original); each copy lands after its original.
    slots: list[tuple[float, int, Example, int | None]] = [
        (float(i), i, ex, None) for i, ex in enumerate(base)
    ]
    edits: dict[int, int] = {}
    for k, origin in enumerate(sorted(picks)):
        copy, edits[len(base) + k] = _perturb(r, base[origin])
        slots.append((r.uniform(origin + 0.5, len(base)), len(base) + k, copy, origin))
    slots.sort(key=lambda s: (s[0], s[1]))
    ids = {key: f"syn-{i + 1:06d}" for i, (_, key, _, _) in enumerate(slots)}
    examples = [ex.model_copy(update={"id": ids[key]}) for _, key, ex, _ in slots]
    near_dup_of = {ids[key]: ids[of] for _, key, _, of in slots if of is not None}
    return SyntheticQA(examples, near_dup_of, {ids[key]: c for key, c in edits.items()})
