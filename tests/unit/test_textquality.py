"""Text quality (dictionary words, look-alike mixing) and the page verdicts OCR is chosen by."""

from __future__ import annotations

from pathlib import Path

import pypdfium2
import pytest
from pydantic import ValidationError

from geomas.config import IngestConfig, TextQualityConfig, ValidationConfig
from geomas.ingest.ocr import debian_packages, mean_confidence, pages_to_recognise, survey
from geomas.ingest.run import settings_fingerprint
from geomas.ingest.textquality import (
    TextQuality,
    measure,
    measure_all,
    page_verdict,
    unknown_languages,
)

PROSE = (
    "Месторождение приурочено к зоне контакта гранитов с известняками. Рудные тела "
    "представлены скарнами мощностью от 2 до 15 м, содержание меди 1,2 %. The deposit is "
    "hosted by skarns."
)


def layer(path: Path, page: int) -> str:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        return str(pdf[page - 1].get_textpage().get_text_range())
    finally:
        pdf.close()


def test_clean_prose_is_dictionary_words_without_mixing() -> None:
    q = measure(PROSE)

    # words of 3+ letters; "скарнами" and "skarns" are not in wordfreq's lists
    assert q.words == 17 and q.known_words == 15
    assert q.mixed_tokens == 0 and q.mixed_share == 0.0
    assert page_verdict(q, TextQualityConfig()) == "good"


def test_a_broken_font_encoding_is_garbage(real_ru: Path) -> None:
    q = measure(layer(real_ru / "ukrf_garbled.pdf", 1))

    assert q.words > 100
    assert q.dictionary_share is not None and q.dictionary_share < 0.3
    assert page_verdict(q, TextQualityConfig()) == "garbage"
    # the same page of the same law with a clean layer is good
    clean = measure(layer(real_ru / "fstec17_text.pdf", 2))
    assert clean.dictionary_share == 1.0
    assert page_verdict(clean, TextQualityConfig()) == "good"


@pytest.mark.parametrize("token", ["KOMПAHИЯ", "Hг", "Л\\одулятор", "кa|рьер", "pуда"])
def test_look_alike_mixing_is_counted(token: str) -> None:
    q = measure(f"Общество {token} добыча")

    assert q.mixed_tokens == 1 and q.examples == (token,)


@pytest.mark.parametrize("text", ["IT-специалист", "км/ч", "PDF-файл", "100 м³", "СО2 и H2O",
                                  "т/з2", "ГОСТ Р 52633"])
def test_legitimate_mixtures_are_not_counted(text: str) -> None:
    assert measure(text).mixed_tokens == 0


def test_words_are_normalised_before_the_dictionary() -> None:
    # "й" as и + combining breve (PDF text layers), "ё" where wordfreq lists "е", "ѐ" for "ё"
    q = measure("Проведённые исследования первои\u0306 очереди приѐма")

    assert q.words == 5 and q.known_words == 5


def test_empty_and_numeric_layers() -> None:
    config = TextQualityConfig()

    assert measure("") == TextQuality()
    assert page_verdict(measure("  \n 12 34,5 | 17 \n"), config) == "empty"
    # a table page: letters enough, too few words to judge
    table = "Т-1 12,3 Т-2 78,9 Ау г/т Аг г/т Cu % Pb % Zn % Скв 1 Скв 2 м мм км Σ"
    assert page_verdict(measure(table), config) == "good"
    assert page_verdict(measure("xqzv wrtp klmn bdfg hjkl cvbn"), config) == "garbage"


def test_counts_add_up_over_texts() -> None:
    parts = [PROSE, "KOMПAHИЯ Хорошо", ""]

    total = measure_all(parts)

    assert total.words == sum(measure(p).words for p in parts)
    assert total.mixed_tokens == 1 and total.examples == ("KOMПAHИЯ",)
    assert TextQuality().dictionary_share is None and TextQuality().mixed_share is None


def test_dictionary_languages_are_checked() -> None:
    assert unknown_languages(["ru", "en", "xx"]) == ["xx"]
    with pytest.raises(ValidationError, match="dictionary_languages"):
        TextQualityConfig(dictionary_languages=("Russian",))
    with pytest.raises(ValidationError, match="dictionary_languages"):
        ValidationConfig(dictionary_languages=("ru_RU",))
    with pytest.raises(ValidationError, match="ocr_languages"):
        IngestConfig(ocr_languages="rus eng")


def test_every_page_of_the_real_pdfs_gets_the_right_verdict(real_ru: Path) -> None:
    config = IngestConfig()

    labour = survey(real_ru / "labour_code.pdf", config)
    scan = survey(real_ru / "fstec17_scan_p1.pdf", config)
    tz = survey(real_ru / "tz_scan_1page.pdf", config)
    garbled = survey(real_ru / "ukrf_garbled.pdf", config)

    assert labour is not None and len(labour) == 258
    assert {p.layer for p in labour} == {"good"}
    assert min(p.dictionary_share or 0 for p in labour) >= 0.95
    assert scan is not None and [(p.layer, p.has_image) for p in scan] == [
        ("empty", True), ("garbage", False)]
    assert tz is not None and [(p.layer, p.has_image) for p in tz] == [("empty", True)]
    assert garbled is not None and [p.layer for p in garbled] == ["garbage", "garbage"]
    # which pages each mode recognises
    assert pages_to_recognise(labour, "auto") == []
    assert pages_to_recognise(scan, "auto") == [1, 2]
    assert pages_to_recognise(scan, "off") == []
    assert pages_to_recognise(labour[:3], "force") == [1, 2, 3]


def test_a_text_layer_in_another_script_is_not_garbage(third_party_pdfs: Path) -> None:
    """Korean pages (docling's skipped_1page.pdf) are not judged by ru/en dictionaries.

    They once counted as 0.04-0.46 dictionary words, "garbage", and were re-read by Tesseract
    with rus+eng, which destroys a good Korean layer.
    """
    assert measure("Ελληνικά γράμματα καλημέρα κόσμε").words == 0
    pages = survey(third_party_pdfs / "skipped_1page.pdf", IngestConfig())
    assert pages is not None and len(pages) == 3
    assert [p.layer for p in pages] == ["good"] * 3
    assert pages_to_recognise(pages, "auto") == []


def test_an_unreadable_pdf_is_left_to_docling(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 not really")

    assert survey(bad, IngestConfig()) is None


def test_mean_confidence_reads_word_rows_of_tesseracts_tsv() -> None:
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight"
           "\tconf\ttext\n"
           "1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t0\t0\t5\t5\t90.5\tРуда\n"
           "5\t1\t1\t1\t1\t2\t0\t0\t5\t5\t70.5\tзолото\n"
           "5\t1\t1\t1\t1\t3\t0\t0\t5\t5\t95\t \n")

    assert mean_confidence(tsv) == 80.5
    assert mean_confidence("level\tconf\ttext\n") is None


def test_debian_packages_named_for_the_languages() -> None:
    assert debian_packages("rus+eng") == ["tesseract-ocr", "tesseract-ocr-rus",
                                          "tesseract-ocr-eng"]
    assert debian_packages("chi_sim") == ["tesseract-ocr", "tesseract-ocr-chi-sim"]


def test_ocr_settings_are_part_of_the_cache_key() -> None:
    base = settings_fingerprint(IngestConfig())

    assert settings_fingerprint(IngestConfig()) == base
    for changed in (IngestConfig(ocr="off"), IngestConfig(ocr="force"),
                    IngestConfig(ocr_dpi=200), IngestConfig(ocr_languages="rus"),
                    IngestConfig(text_quality=TextQualityConfig(min_dictionary_share=0.7))):
        assert settings_fingerprint(changed) != base
    # how fast Tesseract runs does not change its text
    assert settings_fingerprint(IngestConfig(ocr_threads=2, ocr_page_timeout_s=10)) == base
