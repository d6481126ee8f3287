"""The chunker's model-free token counter counts what `token_spans` calls words_and_marks."""

from __future__ import annotations

import pytest

from geomas.ingest.tokens import WordTokenizer, count_word_tokens
from geomas.text import token_spans

TEXTS = [
    "",
    "   \n\t",
    "Пористость 18,5 %, проницаемость 120 мД.",
    "| Скважина | Пласт | Qн, т/сут |\n| --- | --- | --- |\n| 8169 | БС11 | 10,7 |\n",
    "snake_case x² «ёлка» — 165–271 °C; e-mail: a@b.ru",
]


@pytest.mark.parametrize("text", TEXTS)
def test_count_matches_token_spans(text: str) -> None:
    expected = len(token_spans(text, "words_and_marks"))
    assert count_word_tokens(text) == expected
    assert count_word_tokens(text) == expected  # the cached answer is the same
    tok = WordTokenizer(max_tokens=256)
    assert tok.count_tokens(text) == expected
    assert tok.get_tokenizer()(text) == expected
