"""Instruction diversity of a dataset: how many different tasks the instructions ask for.

A model tuned on one instruction phrasing learns the phrasing; the legal guide's cleaner
checks that instructions vary. Three levels are counted: exact instructions; templates (the
instruction with its «Вопрос: …» part removed, i.e. the task description shared by many
questions); and patterns (the first three words of the template).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, Field

from geomas.formats.example import Example

# «Вопрос:» opening the text, a line or a sentence (not «ответь на вопрос: …»).
_QUESTION = re.compile(r"(?:^|(?<=\n)|(?<=[.!?])\s)\s*вопрос\s*:.*", re.IGNORECASE | re.DOTALL)
_SHOWN_CHARS = 200
QUESTION_ONLY = "(question only)"


class Repeated(BaseModel):
    """One frequent instruction, template or pattern."""

    text: str = Field(description=f"The text, cut to {_SHOWN_CHARS} characters.")
    count: int
    share: float


class DiversityLevel(BaseModel):
    """Counts at one level (instructions, templates or first-3-word patterns)."""

    distinct: int
    most_common_share: float = Field(description="Share of records with the most common one.")
    top: list[Repeated]


class DiversityReport(BaseModel):
    """Instruction diversity of the kept records."""

    records: int
    instructions: DiversityLevel
    templates: DiversityLevel = Field(
        description="Instructions without their «Вопрос: …» part."
    )
    patterns: DiversityLevel = Field(description="First three words of the template.")


def split_question(instruction: str) -> tuple[str, str]:
    r"""Split an instruction into its task description and its «Вопрос: …» part.

    Args:
        instruction: E.g. «Опиши руды.\n\nВопрос: Каковы содержания?».

    Returns:
        ``(task, question)``: («Опиши руды.», «\n\nВопрос: Каковы содержания?»); the
        question is the whole instruction when it has no «Вопрос:».
    """
    m = _QUESTION.search(instruction)
    if m is None:
        return "", instruction
    return instruction[: m.start()], instruction[m.start() :]


def instruction_template(instruction: str) -> str:
    r"""The instruction without its «Вопрос: …» part, spaces collapsed.

    Args:
        instruction: An instruction such as «Опиши руды.\n\nВопрос: Каковы …?».

    Returns:
        The task description («Опиши руды.»): the whole instruction when it has no
        «Вопрос:», and ``QUESTION_ONLY`` when it is nothing but the question.
    """
    return " ".join(_QUESTION.sub("", instruction).split()) or QUESTION_ONLY


def _level(values: Sequence[str], top: int) -> DiversityLevel:
    counts = Counter(values)
    n = len(values)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return DiversityLevel(
        distinct=len(counts),
        most_common_share=round(ranked[0][1] / n, 4) if ranked else 0.0,
        top=[
            Repeated(text=text[:_SHOWN_CHARS], count=c, share=round(c / n, 4))
            for text, c in ranked[:top]
            if c > 1
        ],
    )


def diversity_report(examples: Sequence[Example], top: int = 10) -> DiversityReport:
    """Count distinct instructions, templates and patterns, and list the most repeated.

    Args:
        examples: The records (normally the kept ones).
        top: How many repeated items to list per level (only items seen twice or more).

    Returns:
        The report.
    """
    instructions = [" ".join(ex.instruction.split()) for ex in examples]
    templates = [instruction_template(ex.instruction) for ex in examples]
    return DiversityReport(
        records=len(examples),
        instructions=_level(instructions, top),
        templates=_level(templates, top),
        patterns=_level([" ".join(t.casefold().split()[:3]) for t in templates], top),
    )
