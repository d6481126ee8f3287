"""A large, table-heavy Russian PDF for the ingestion benchmark (a field development report).

Deterministic: the same arguments give the same bytes (reportlab ``invariant``, a seeded
``random.Random``, no wall clock). The layout follows the reports users feed to geomas: a title
page, a table of contents with page numbers, running header and footer with the page number,
short Russian prose per section and, on most pages, numeric tables (well parameters by well,
production by year, reservoir properties by layer) that run over several pages with their
header row repeated.

    .venv/bin/python bench/tablepdf.py /tmp/field_report.pdf   # writes it and prints pages
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from geomas.sample.vocab import num
from geomas.sample.writers import FONT_BOLD, FONT_REGULAR, _register_fonts

FIELD = "Южно-Тарасовского"  # genitive: «проект разработки … месторождения»
COMPANY = "ООО «Тарасовскнефтегаз»"
LAYERS = ("БС10", "БС11", "БС12", "АС9", "АС10", "ЮС1", "ЮС2", "АВ1", "АВ2", "ПК1")
PROSE = (
    "Месторождение расположено в пределах Надым-Пурской нефтегазоносной области и введено в "
    "промышленную разработку в 1998 году. Основные запасы нефти приурочены к пластам группы БС.",
    "Коллекторы представлены мелкозернистыми песчаниками и крупнозернистыми алевролитами с "
    "прослоями глин; пористость изменяется от 16 до 24 %, проницаемость от 5 до 350 мД.",
    "Система разработки — площадная девятиточечная с расстоянием между скважинами 500 м. "
    "Поддержание пластового давления осуществляется закачкой подтоварной и сеноманской воды.",
    "По состоянию на 01.01.2025 накопленная добыча нефти составила 41,7 млн т, текущий "
    "коэффициент извлечения нефти — 0,287 при утверждённом значении 0,412.",
    "Анализ показал, что основная часть фонда работает с обводнённостью выше 80 %, а снижение "
    "дебитов связано с падением пластового давления в зонах отбора и ростом газового фактора.",
    "Рекомендуется провести гидроразрыв пласта на 46 скважинах, перевести 12 скважин под "
    "закачку и выполнить бурение боковых стволов на участках с невыработанными запасами.",
    "Результаты гидродинамических исследований свидетельствуют об ухудшении фильтрационных "
    "свойств призабойной зоны; скин-фактор по большинству скважин находится в пределах 2–7.",
    "Подсчётные параметры приняты по результатам интерпретации ГИС и керна; "
    "коэффициент песчанистости по пласту БС10 составляет 0,61, по пласту БС11 — 0,54.",
)
SECTION_TITLES = (
    "Общие сведения о месторождении",
    "Геолого-физическая характеристика пластов",
    "Физико-химические свойства нефти, газа и воды",
    "Запасы нефти и растворённого газа",
    "Состояние фонда скважин",
    "Динамика добычи нефти, жидкости и закачки воды",
    "Анализ выработки запасов по пластам",
    "Гидродинамические исследования скважин",
    "Эффективность геолого-технических мероприятий",
    "Энергетическое состояние залежей",
    "Технологические показатели вариантов разработки",
    "Экономическая оценка вариантов разработки",
)


def _well_table(r: random.Random, rows: int) -> list[list[str]]:
    """Well parameters: one row per well, nine numeric columns."""
    head = ["Скважина", "Пласт", "Куст", "Нэф, м", "Кп, %", "Кпр, мД", "Qн, т/сут",
            "Qж, м³/сут", "Обв., %", "Рпл, МПа", "Рзаб, МПа"]
    body = []
    for _ in range(rows):
        qn = r.uniform(0.5, 60)
        water = r.uniform(20, 98)
        body.append([
            f"{1000 + r.randrange(9000)}", r.choice(LAYERS), f"{r.randrange(1, 240)}",
            num(r.uniform(1.5, 24)), num(r.uniform(15, 25)), num(r.uniform(3, 400)),
            num(qn), num(qn / max(0.02, 1 - water / 100) / 0.86), num(water),
            num(r.uniform(18, 27), 2), num(r.uniform(8, 17), 2),
        ])
    return [head, *body]


def _year_table(r: random.Random, first_year: int, rows: int) -> list[list[str]]:
    """Production by year: one row per year."""
    head = ["Год", "Добыча нефти, тыс. т", "Добыча жидкости, тыс. т", "Закачка воды, тыс. м³",
            "Фонд доб.", "Фонд нагн.", "Обв., %", "КИН, д. ед."]
    oil = r.uniform(900, 2400)
    kin = r.uniform(0.05, 0.1)
    body = []
    for k in range(rows):
        oil *= r.uniform(0.9, 1.02)
        water = min(98.0, 40 + k * r.uniform(0.8, 1.6))
        liquid = oil / (1 - water / 100)
        kin += oil / 150000
        body.append([
            str(first_year + k), num(oil), num(liquid), num(liquid * r.uniform(1.0, 1.2)),
            str(r.randrange(300, 1400)), str(r.randrange(100, 600)), num(water), num(kin, 3),
        ])
    return [head, *body]


def _layer_table(r: random.Random) -> list[list[str]]:
    """Reservoir properties by layer: the short table of every section."""
    head = ["Параметр", *LAYERS[:7]]
    params = ("Глубина кровли, м", "Средняя нефтенасыщенная толщина, м", "Пористость, %",
              "Проницаемость, мД", "Нефтенасыщенность, д. ед.", "Вязкость нефти, мПа·с",
              "Плотность нефти, т/м³", "Пластовое давление, МПа", "Температура, °С",
              "Газовый фактор, м³/т", "Коэффициент вытеснения, д. ед.")
    body = [[p, *(num(r.uniform(0.1, 3000), 2) for _ in LAYERS[:7])] for p in params]
    return [head, *body]


def _sections(r: random.Random, n_sections: int) -> list[dict[str, Any]]:
    sections = []
    for i in range(n_sections):
        title = f"{i + 1}. {SECTION_TITLES[i % len(SECTION_TITLES)]}"
        if i >= len(SECTION_TITLES):
            title += f" (участок {i // len(SECTION_TITLES) + 1})"
        tables = [("Таблица {n}. Свойства пластов", _layer_table(r)),
                  ("Таблица {n}. Параметры работы скважин", _well_table(r, r.randrange(90, 130))),
                  ("Таблица {n}. Динамика основных показателей", _year_table(r, 1998, 28)),
                  ("Таблица {n}. Параметры работы скважин (продолжение анализа)",
                   _well_table(r, r.randrange(60, 90)))]
        sections.append({
            "title": title,
            "paragraphs": [f"{r.choice(PROSE)} {r.choice(PROSE)}"
                           for _ in range(r.randrange(2, 4))],
            "tables": tables,
        })
    return sections


def table_report_pdf(n_sections: int = 50, seed: int = 6) -> tuple[bytes, int]:
    """Render the report; return its bytes and page count (the defaults give 263 pages)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import cm
    from reportlab.platypus import PageBreak, Paragraph, Spacer, Table, TableStyle
    from reportlab.platypus.doctemplate import BaseDocTemplate, PageTemplate
    from reportlab.platypus.frames import Frame
    from reportlab.platypus.tableofcontents import TableOfContents

    _register_fonts()
    r = random.Random(seed)
    common = {"hyphenationLang": "", "embeddedHyphenation": 0, "splitLongWords": 0}
    h1 = ParagraphStyle("TH1", fontName=FONT_BOLD, fontSize=13, leading=17, spaceBefore=8,
                        spaceAfter=6, keepWithNext=1, **common)
    title = ParagraphStyle("TTitle", fontName=FONT_BOLD, fontSize=18, leading=24,
                           spaceAfter=18, **common)
    body = ParagraphStyle("TBody", fontName=FONT_REGULAR, fontSize=10, leading=13.5,
                          firstLineIndent=0.8 * cm, spaceAfter=4, **common)
    caption = ParagraphStyle("TCap", fontName=FONT_REGULAR, fontSize=9, leading=11,
                             spaceBefore=4, spaceAfter=3, keepWithNext=1, **common)
    contents = ParagraphStyle("TContents", parent=h1)
    toc_style = ParagraphStyle("TToc", fontName=FONT_REGULAR, fontSize=10, leading=14, **common)

    class Doc(BaseDocTemplate):
        def afterFlowable(self, flowable: Any) -> None:  # noqa: N802 - reportlab hook
            if isinstance(flowable, Paragraph) and flowable.style.name == "TH1":
                self.notify("TOCEntry", (0, flowable.getPlainText(), self.page))

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT_REGULAR, 8)
        w, h = A4
        canvas.drawString(2 * cm, h - 1.2 * cm,
                          f"{COMPANY}. Проект разработки {FIELD} месторождения")
        canvas.drawRightString(w - 1.5 * cm, 1.0 * cm, f"Страница {doc.page}")
        canvas.restoreState()

    buf = io.BytesIO()
    doc = Doc(buf, pagesize=A4, leftMargin=2 * cm, rightMargin=1.5 * cm, topMargin=2 * cm,
              bottomMargin=1.8 * cm, title=f"Проект разработки {FIELD} месторождения",
              author="geomas bench", creator="geomas bench/tablepdf.py", invariant=1)
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body")
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=decorate)])

    toc = TableOfContents(levelStyles=[toc_style], dotsMinLevel=0)
    style = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT_REGULAR),
        ("FONTNAME", (0, 0), (-1, 0), FONT_BOLD),
        ("FONTSIZE", (0, 0), (-1, -1), 7.5),
        ("LEADING", (0, 0), (-1, -1), 9),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E6E6E6")),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
    ])
    story: list[Any] = [
        Paragraph(escape(f"Проект разработки {FIELD} нефтяного месторождения"), title),
        Paragraph(escape(f"{COMPANY}. Отчёт о научно-исследовательской работе. Книга 1. "
                         "Текст, таблицы."), body),
        Spacer(1, 12), Paragraph("Содержание", contents), toc, PageBreak(),
    ]
    n_table = 0
    for section in _sections(r, n_sections):
        story.append(Paragraph(escape(section["title"]), h1))
        story += [Paragraph(escape(p), body) for p in section["paragraphs"]]
        for cap, rows in section["tables"]:
            n_table += 1
            story.append(Paragraph(escape(cap.format(n=n_table)), caption))
            table = Table(rows, repeatRows=1, hAlign="LEFT")
            table.setStyle(style)
            story.append(table)
            story.append(Paragraph(escape(r.choice(PROSE)), body))
    doc.multiBuild(story)
    data = buf.getvalue()
    return data, doc.page


def write_table_report(path: Path, n_sections: int = 50, seed: int = 6) -> int:
    """Write the report to `path` (only when it differs); return its page count."""
    data, pages = table_report_pdf(n_sections, seed)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    return pages


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "field_report.pdf")
    print(out, write_table_report(out), "pages")
