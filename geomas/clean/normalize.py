r"""Text normalisation of instruction examples: applied to every record, removes none.

Per text: Unicode NFC; invisible characters (zero-width, BOM, soft hyphen) removed and
no-break/odd spaces made plain; page furniture lines removed («Стр. 3», «- 12 -», «Страница 3 из
10», running headers repeated within the field); words split by a hyphen at a line break
joined («место-\nрождение» → «месторождение»); spaces collapsed, line ends stripped, at most one
blank line between paragraphs.

De-hyphenation keeps the hyphen (and drops only the line break) when the second part starts
with a capital letter («Южно-\nКумрочское»), when the first part is a configured compound
prefix («северо-\nвосточный»), or when the dataset itself writes that word with a hyphen more
often than without («золото-кварцевый» elsewhere in the data keeps «золото-\nкварцевый»).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geomas.config import CleanConfig
from geomas.formats.example import Example

TEXT_FIELDS = ("instruction", "input", "output", "system")

# Removed: zero-width characters, BOM, Mongolian vowel separator, C0/C1 controls (but tab,
# line feed and carriage return). Made plain spaces: no-break and typographic spaces, tab.
# Made "-": Unicode hyphen and non-breaking hyphen. A soft hyphen is removed; one at a line
# end joins the two lines (see _SOFT_HYPHEN_BREAK).
_CONTROLS = [c for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r"]
_TRANSLATE: dict[int, str | None] = {
    **dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"), None),
    **dict.fromkeys(_CONTROLS, None),
    **dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u205f\u3000\t"), " "),
    **dict.fromkeys(range(0x2000, 0x200B), " "),
    **{0x2010: "-", 0x2011: "-", 0x2028: "\n", 0x2029: "\n\n"},
}
_SOFT_HYPHEN_BREAK = re.compile("\u00ad[ \t]*(?:\r\n|\r|\n)[ \t]*")
_NEEDS_TRANSLATE = re.compile("[" + re.escape("".join(map(chr, _TRANSLATE))) + "]")
_RUN_OF_SPACES = re.compile(r" {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")
_LETTER = re.compile(r"[^\W\d_]")
# A word split at a line break: letters, a hyphen, one line break (or one blank line when
# furniture between the halves was removed), letters.
_SPLIT_WORD = re.compile(r"(?<!\w)([^\W\d_]+)-\n\n?([^\W\d_]+)")
_HYPHENATED_OR_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


@dataclass
class NormalizeStats:
    """What normalisation changed across a dataset."""

    records_changed: int = 0
    furniture_lines: int = 0
    dehyphenated: int = 0
    hyphens_kept: int = 0


class Normalizer:
    """Normalises the text fields of examples according to a `CleanConfig`."""

    def __init__(self, config: CleanConfig) -> None:
        self.config = config
        self._furniture = [re.compile(p, re.IGNORECASE) for p in config.furniture_patterns]
        self._keep_prefixes = frozenset(p.casefold() for p in config.keep_hyphen_prefixes)
        self.stats = NormalizeStats()

    # ----------------------------------------------------------------------------- per text
    def _is_furniture(self, line: str) -> bool:
        return any(p.fullmatch(line) for p in self._furniture)

    def _lines(self, text: str) -> str:
        """NFC, invisible characters, spaces, furniture lines; no de-hyphenation yet."""
        text = unicodedata.normalize("NFC", text)
        if _NEEDS_TRANSLATE.search(text):
            if "\u00ad" in text:
                text = _SOFT_HYPHEN_BREAK.sub("", text)
            text = text.translate(_TRANSLATE)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            text = _RUN_OF_SPACES.sub(" ", text).strip()
            if self._is_furniture(text):
                self.stats.furniture_lines += 1
                return ""
            return text
        lines = [_RUN_OF_SPACES.sub(" ", line).strip() for line in text.split("\n")]
        repeated: set[str] = set()
        if self.config.furniture_repeat_min:
            counts = Counter(
                line for line in lines
                if line and len(line) <= self.config.furniture_max_line_chars
                and _LETTER.search(line)
            )
            repeated = {line for line, n in counts.items()
                        if n >= self.config.furniture_repeat_min}
        kept = []
        for line in lines:
            if line and (line in repeated or self._is_furniture(line)):
                self.stats.furniture_lines += 1
                continue
            kept.append(line)
        return _BLANK_LINES.sub("\n\n", "\n".join(kept)).strip()

    def _dehyphenate(self, text: str, evidence: Counter[str]) -> str:
        def join(match: re.Match[str]) -> str:
            left, right = match.group(1), match.group(2)
            hyphenated = f"{left}-{right}".casefold()
            joined = f"{left}{right}".casefold()
            if (
                right[0].isupper()
                or left.casefold() in self._keep_prefixes
                or evidence[hyphenated] > evidence[joined]
            ):
                self.stats.hyphens_kept += 1
                return f"{left}-{right}"
            self.stats.dehyphenated += 1
            return f"{left}{right}"

        return _SPLIT_WORD.sub(join, text)

    # ------------------------------------------------------------------------- per dataset
    def normalize(self, examples: Sequence[Example]) -> list[Example]:
        """Normalised copies of `examples` (unchanged records are returned as they are)."""
        staged: list[dict[str, str]] = []
        for ex in examples:
            staged.append({
                name: self._lines(value)
                for name in TEXT_FIELDS
                if isinstance(value := getattr(ex, name), str)
            })
        if self.config.dehyphenate:
            split = [
                (k, name) for k, fields in enumerate(staged)
                for name, text in fields.items() if "-\n" in text and _SPLIT_WORD.search(text)
            ]
            if split:
                evidence = self._evidence(staged, split)
                for k, name in split:
                    staged[k][name] = self._dehyphenate(staged[k][name], evidence)
                # Blank lines left where furniture separated the two halves.
                for k, name in split:
                    staged[k][name] = _BLANK_LINES.sub("\n\n", staged[k][name]).strip()
        out = []
        for ex, fields in zip(examples, staged, strict=True):
            changed = {n: v for n, v in fields.items() if v != getattr(ex, n)}
            if changed:
                self.stats.records_changed += 1
                out.append(ex.model_copy(update=changed))
            else:
                out.append(ex)
        return out

    @staticmethod
    def _evidence(
        staged: Sequence[dict[str, str]], split: Iterable[tuple[int, str]]
    ) -> Counter[str]:
        """How often the dataset writes each split word hyphenated and joined (one line)."""
        wanted: set[str] = set()
        for k, name in split:
            for m in _SPLIT_WORD.finditer(staged[k][name]):
                left, right = m.group(1).casefold(), m.group(2).casefold()
                wanted.update((f"{left}-{right}", f"{left}{right}"))
        evidence: Counter[str] = Counter()
        for fields in staged:
            for text in fields.values():
                for token in _HYPHENATED_OR_WORD.findall(text.casefold()):
                    if token in wanted:
                        evidence[token] += 1
        return evidence


def normalize_text(text: str, config: CleanConfig | None = None) -> str:
    """Normalise one text as `clean_examples` does (de-hyphenation without dataset evidence).

    Args:
        text: Any text.
        config: Cleaning settings; the defaults when None.

    Returns:
        The normalised text.
    """
    normalizer = Normalizer(config or CleanConfig())
    staged = normalizer._lines(text)
    if normalizer.config.dehyphenate and "-\n" in staged:
        staged = _BLANK_LINES.sub("\n\n", normalizer._dehyphenate(staged, Counter())).strip()
    return staged
