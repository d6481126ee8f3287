"""Data pipeline settings: ingest, validation, NER, QA, cleaning, split and formats."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geomas.config.base import (
    Profile,
    StrictModel,
    cyrillic_defaults,
    dictionary_defaults,
    env_path,
)
from geomas.config.qa_rules import (
    AnswerTypeRule,
    NerShiftConfig,
    QuestionKind,
    default_answer_types,
    default_question_kinds,
)

#: What a chunk holds: running text, a table, a table of contents, or a title page / preamble.
ChunkKind = Literal["body", "table", "toc", "front_matter"]


class HygieneConfig(StrictModel):
    """Clean-up of the parsed document before it is chunked (geomas.ingest.hygiene).

    Each rule is counted per document and in ingest_summary.json (``hygiene``); ``enabled:
    false`` turns all of them off (docling's own chunk text, every chunk of kind body).
    """

    enabled: bool = Field(default=True, description="Master switch for every rule below.")
    plain_text: bool = Field(
        default=True,
        description="Chunk text without Markdown markers (bold, links, headings); the runs of "
        "one paragraph stay on one line when a long paragraph is split.",
    )
    tables: bool = Field(
        default=True,
        description="Tables as Markdown tables (header row kept when a table is split); in PDFs "
        "without table structure, cells on one line are regrouped into rows and runs of rows "
        "into tables. Never one cell per line.",
    )
    paragraphs: bool = Field(
        default=True, description="PDF text lines joined into paragraphs (also across pages)."
    )
    hyphenation: bool = Field(
        default=True,
        description="Line-end hyphenation rejoined when the joined word is in the Russian "
        "dictionary (pymorphy3); real hyphenated compounds keep their hyphen.",
    )
    headers_footers: bool = Field(
        default=True,
        description="PDF lines repeated at the same place (top or bottom margin) across pages "
        "are removed.",
    )
    page_numbers: bool = Field(
        default=True, description="PDF page-number lines in the top/bottom margin are removed."
    )
    scripts: bool = Field(
        default=True,
        description="Super/subscripts written as Unicode (м³, 10⁶) instead of a loose digit "
        "('м 3') glued to the next number.",
    )
    formulas: bool = Field(
        default=True,
        description="Formulas kept as docling decodes them ($LaTeX$); an undecoded one becomes "
        "the marker [формула], never an empty gap.",
    )
    kinds: bool = Field(
        default=True,
        description="Tag chunks as table, toc or front_matter (else body); chunks of different "
        "kinds are never merged.",
    )
    max_numeric_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="A chunk whose tokens are more numeric than this is of kind table.",
    )
    margin_share: float = Field(
        default=0.12, gt=0.0, lt=0.5,
        description="Top and bottom share of a PDF page searched for headers, footers and "
        "page numbers.",
    )
    min_repeat_pages: int = Field(
        default=3, ge=2,
        description="A margin line is a running header/footer when it repeats on at least this "
        "many pages and on at least repeat_share of them.",
    )
    repeat_share: float = Field(default=0.4, gt=0.0, le=1.0)


class LegacyDocConfig(StrictModel):
    """Legacy Word files (.doc, .rtf; an ODT under either name) converted to DOCX first.

    LibreOffice (``soffice --headless --convert-to docx``) converts them, each call with its own
    throwaway user profile; docling then reads the DOCX. Debian package:
    ``libreoffice-writer-nogui`` (or ``libreoffice-writer``).
    """

    soffice: str = Field(
        default="soffice", min_length=1,
        description="LibreOffice's command: a name looked up on PATH, or a path. Missing, the "
        "legacy files are rejected (converter_missing) naming the package; the run goes on.",
    )
    timeout_s: float = Field(
        default=180.0, gt=0,
        description="A conversion still running after this many seconds is killed and the file "
        "rejected (conversion_failed).",
    )


#: wordfreq language codes ("ru", "en", "pt-br"...).
_DICTIONARY_LANGUAGE = r"^[a-z]{2,3}(-[a-z]+)?$"


class TextQualityConfig(StrictModel):
    """When a PDF page's text layer is usable (geomas.ingest.textquality.page_verdict).

    ``ingest.ocr: auto`` recognises the pages whose layer is ``empty`` (and that hold an image)
    or ``garbage``; a ``good`` layer is read as it is.
    """

    dictionary_languages: tuple[str, ...] = Field(
        default_factory=dictionary_defaults, min_length=1,
        description="wordfreq languages whose words count as known words.",
    )
    min_letters: int = Field(
        default=20, ge=1,
        description="A page whose text layer has fewer letters is empty (a scan, or a scan "
        "with a stray stamp).",
    )
    min_words: int = Field(
        default=5, ge=1,
        description="A layer with fewer words (of 3+ letters) is not judged: good (a page of "
        "numbers).",
    )
    min_dictionary_share: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="A layer with a smaller share of dictionary words is garbage (clean pages "
        "of the real-ru PDFs: >= 0.97; layers with a broken font encoding: <= 0.27).",
    )
    max_mixed_share: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="A layer with a larger share of words mixing Cyrillic and Latin letters "
        "(or with \\ or | inside) is garbage.",
    )

    @model_validator(mode="after")
    def _languages(self) -> TextQualityConfig:
        _check_dictionary_languages(self.dictionary_languages, "dictionary_languages")
        return self


def _check_dictionary_languages(languages: tuple[str, ...], field: str) -> None:
    bad = [lang for lang in languages if not re.match(_DICTIONARY_LANGUAGE, lang)]
    if bad:
        raise ValueError(f"{field}: {bad} are not wordfreq language codes (e.g. 'ru', 'en')")


class IngestConfig(StrictModel):
    """Document conversion and chunking."""

    pdf_parser: Literal["auto", "native", "layout"] = Field(
        default="auto",
        description=(
            "auto: docling's layout pipeline when layout_artifacts_path is set, otherwise the "
            "model-free NativePdfPipeline. native/layout force one of them."
        ),
    )
    layout_artifacts_path: Path | None = Field(
        default_factory=lambda: env_path("GEOMAS_LAYOUT_ARTIFACTS_PATH"),
        description="Local folder with docling's layout model weights; default: the "
        "GEOMAS_LAYOUT_ARTIFACTS_PATH environment variable (set in the trainer image, where the "
        "weights are baked in), else none.",
    )
    max_tokens: int = Field(default=256, ge=16, le=32768, description="Token limit per chunk.")
    tokenizer: Path | None = Field(
        default=None,
        description=(
            "Local Hugging Face tokenizer folder used to count chunk tokens. None: geomas's "
            "built-in Unicode word/punctuation counter (no model needed)."
        ),
    )
    workers: int = Field(default=2, ge=1, le=64, description="Parallel conversion processes.")
    max_failure_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Exit non-zero when rejected files / all files exceeds this ratio.",
    )
    extensions: tuple[str, ...] = Field(
        default=(".pdf", ".docx", ".doc", ".rtf", ".html", ".htm", ".md"),
        description="File suffixes that are converted; any other file is rejected with a reason.",
    )
    document_timeout_s: float | None = Field(default=600.0, gt=0)
    max_file_bytes: int | None = Field(
        default=1 << 30, ge=1,
        description="Files larger than this are rejected (too_large) before they are read; "
        "None: no limit.",
    )
    pdf_page_batch: int = Field(
        default=32, ge=1, le=100000,
        description="The native PDF pipeline converts a long PDF this many pages at a time "
        "(with hygiene on), so a document's peak memory does not grow with its page count.",
    )
    hygiene: HygieneConfig = Field(default_factory=HygieneConfig)
    legacy: LegacyDocConfig = Field(default_factory=LegacyDocConfig)
    ocr: Literal["auto", "off", "force"] = Field(
        default="auto",
        description="PDF pages recognised by Tesseract: auto, the pages whose text layer is "
        "missing or garbage (text_quality); force, every page; off, none (a scanned PDF is "
        "rejected as no_text).",
    )
    ocr_languages: str = Field(
        default="rus+eng", pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages, '+'-joined; each needs its language data (Debian "
        "package tesseract-ocr-<lang>, e.g. tesseract-ocr-rus).",
    )
    ocr_dpi: int = Field(default=300, ge=72, le=1200,
                         description="Resolution a page is rendered at for OCR.")
    ocr_threads: int = Field(
        default=1, ge=1, le=64,
        description="Threads of one Tesseract run (OMP_THREAD_LIMIT). The worker processes are "
        "the parallelism: on 2 cores Tesseract's default threads took 7.5 s a page, 1 thread "
        "2.4 s.",
    )
    ocr_page_timeout_s: float = Field(
        default=300.0, gt=0,
        description="A page whose recognition takes longer keeps its own text layer (a warning "
        "on the document).",
    )
    tesseract_cmd: str = Field(
        default="tesseract", min_length=1,
        description="Tesseract's command: a name looked up on PATH, or a path. Missing, a PDF "
        "with pages to recognise is rejected (ocr_unavailable) naming the Debian package.",
    )
    text_quality: TextQualityConfig = Field(default_factory=TextQualityConfig)

    @model_validator(mode="after")
    def _layout_needs_weights(self) -> IngestConfig:
        if self.pdf_parser == "layout" and self.layout_artifacts_path is None:
            raise ValueError(
                "pdf_parser='layout' needs layout_artifacts_path (a local folder with docling's "
                "layout weights, e.g. from `docling-tools models download`); use 'auto' or "
                "'native' to run without them"
            )
        return self


class ValidationConfig(StrictModel):
    """Great Expectations checks on chunks and what happens when they fail."""

    policy: Literal["exclude_document", "fail", "warn"] = Field(
        default="exclude_document",
        description=(
            "exclude_document: the chunk suite is judged per document; a document whose chunks "
            "fail is named, left out of NER/QA (validation/rejects.jsonl) and the run goes on "
            "(the QA-pair and example suites, which check geomas's own records, fail as under "
            "fail). fail: any failed expectation stops the run. warn: log and go on."
        ),
    )
    profile: Profile = "geology"
    min_chars: int = Field(default=1, ge=1)
    max_chars: int = Field(default=20000, ge=1)
    min_cyrillic_share: dict[Profile, float] = Field(
        default_factory=cyrillic_defaults,
        description="Minimum share of Cyrillic letters among letters per chunk, by profile.",
    )
    mostly: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Share of records (chunks, QA pairs, examples) of the whole run that must "
        "pass the per-record Cyrillic-share check (policies fail and warn).",
    )
    document_mostly: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="exclude_document: share of a document's chunks (those with letters) that "
        "must pass the Cyrillic-share check; a Russian report whose English abstract or "
        "bibliography fills a minority of its chunks is kept. Every other chunk check "
        "excludes a document on one failing chunk.",
    )
    max_excluded_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="exclude_document: stop the run (naming the files) when excluded documents "
        "/ all documents exceeds this; a run that would exclude every document always stops.",
    )
    max_unknown_word_share: float | None = Field(
        default=0.4, ge=0.0, le=1.0,
        description="OCR noise: a document whose chunk words (3+ letters) are more often not in "
        "the dictionary (dictionary_languages) fails; None: not checked. Clean real-ru "
        "documents: <= 0.04, generated geology reports: <= 0.12 (rare terms, place names), a "
        "PDF layer with a broken font encoding: 0.77.",
    )
    max_mixed_word_share: float | None = Field(
        default=0.02, ge=0.0, le=1.0,
        description="OCR noise: a document with a larger share of words mixing Cyrillic and "
        "Latin letters ('KOMПAHИЯ') or holding \\ or | between letters fails; None: not "
        "checked. Clean documents: < 0.001.",
    )
    noise_min_words: int = Field(
        default=50, ge=1,
        description="Documents with fewer words of 3+ letters are not judged for OCR noise.",
    )
    dictionary_languages: tuple[str, ...] = Field(
        default_factory=dictionary_defaults, min_length=1,
        description="wordfreq languages whose words count as known (OCR-noise check).",
    )

    @model_validator(mode="after")
    def _bounds(self) -> ValidationConfig:
        if self.min_chars > self.max_chars:
            raise ValueError(
                f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})"
            )
        if self.profile not in self.min_cyrillic_share:
            raise ValueError(f"min_cyrillic_share has no entry for profile {self.profile!r}")
        _check_dictionary_languages(self.dictionary_languages, "dictionary_languages")
        return self

    @property
    def cyrillic_min(self) -> float:
        """The Cyrillic share floor for the active profile."""
        return self.min_cyrillic_share[self.profile]


class NerTrainConfig(StrictModel):
    """`geomas train-bert-ner`: token classification from a local BERT-like model."""

    model_name: str = Field(
        min_length=1,
        description="Local model folder, or a hub id already in the local Hugging Face cache.",
    )
    output_dir: Path
    epochs: int = Field(default=30, ge=1, le=1000)
    batch_size: int = Field(default=8, ge=1, le=1024)
    learning_rate: float = Field(default=2e-5, gt=0, le=1.0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    max_length: int = Field(default=256, ge=16, le=8192, description="Sub-word tokens per window.")
    stride: int = Field(default=32, ge=0, description="Overlap between windows of long records.")
    early_stopping_patience: int = Field(default=3, ge=1)
    val_share: float = Field(
        default=0.15,
        gt=0,
        lt=1,
        description="Share of training documents held out for early stopping.",
    )
    seed: int = 42
    register_model: bool = Field(default=True, description="Log to MLflow, register geomas-ner.")
    registered_model_name: str = "geomas-ner"

    @model_validator(mode="after")
    def _stride_below_window(self) -> NerTrainConfig:
        if self.stride >= self.max_length // 2:
            raise ValueError(
                f"stride ({self.stride}) must be below half of max_length ({self.max_length})"
            )
        return self


class NerInferenceConfig(StrictModel):
    """Entity extraction over chunks with a trained token-classification model."""

    model_path: Path | None = Field(
        default=None, description="Trained NER model folder; None skips entity extraction."
    )
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_length: int = Field(default=256, ge=16, le=8192)
    stride: int = Field(default=64, ge=0)
    min_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Entities whose mean word probability is below this are not returned: "
        "under 0.5 the model gives the label less probability than all others together.",
    )
    chunk_kinds: tuple[ChunkKind, ...] = Field(
        default=("body",), min_length=1,
        description="Kinds of chunks sent to NER (and so to QA); table, toc and front_matter "
        "chunks stay in chunks.json.",
    )


class TeacherConfig(StrictModel):
    """LLM teacher for QA pairs through an OpenAI-compatible chat endpoint.

    ``enabled`` turns on the post-processing of the local pairs (``mode`` rewrite or answer);
    ``qa.mode`` teacher or hybrid has the teacher write pairs of its own from each chunk.
    Both use this endpoint, its transport settings and its response cache (and so does
    ``qa.judge`` unless it names an endpoint of its own).
    """

    enabled: bool = Field(
        default=False,
        description="Rewrite or answer the local (template) pairs with the teacher (see mode).",
    )
    base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1 (vLLM, Ollama).",
    )
    model: str | None = Field(default=None, description="Model name sent with each request.")
    api_key_env: str = Field(
        default="OPENAI_API_KEY",
        min_length=1,
        description="Environment variable holding the API key; the key itself is never stored.",
    )
    mode: Literal["rewrite", "answer"] = Field(
        default="rewrite",
        description=(
            "rewrite: the model rephrases the template question, the extractive answer stays; "
            "answer: the model answers the question from the context (checked for grounding)."
        ),
    )
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10, description="Retries per request (openai).")
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1, le=32768)
    min_grounding: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="answer mode: least share of the answer's words that occur in the context; "
        "pairs the teacher writes: in the chunk.",
    )
    keep_template_on_failure: bool = Field(
        default=True,
        description=(
            "Keep the template pair when the teacher fails for it (API error, invalid or "
            "ungrounded response); the failure is recorded in the rejects either way."
        ),
    )
    workers: int = Field(default=4, ge=1, le=64, description="Concurrent requests.")
    cache: bool = Field(
        default=True,
        description="Keep each response on disk under the sha256 of the request (base_url, "
        "model, messages, temperature, max_tokens): a rerun with the same inputs sends no "
        "request. Failed and empty responses are not kept (they are asked again).",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Folder of the response cache; None: .llm_cache next to qa_pairs.json.",
    )
    chunk_kinds: tuple[ChunkKind, ...] = Field(
        default=("body",), min_length=1,
        description="qa.mode teacher/hybrid: kinds of chunks the teacher writes pairs for.",
    )
    min_chunk_chars: int = Field(
        default=100, ge=1,
        description="qa.mode teacher/hybrid: shorter chunks (headings, captions) get no teacher "
        "pairs (rule chunk_too_short).",
    )
    max_error_ratio: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Fail the run (after writing outputs) when API errors / requests exceed this.",
    )

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> TeacherConfig:
        if self.enabled and (not self.base_url or not self.model):
            raise ValueError(
                "teacher.enabled needs teacher.base_url (an OpenAI-compatible API root such as "
                "http://127.0.0.1:8000/v1) and teacher.model; set both or disable the teacher"
            )
        return self


class JudgeConfig(StrictModel):
    """LLM judge of QA pairs: faithfulness to the context and relevance to the question.

    Each pair is scored 1-5 on both; a pair below ``min_faithfulness`` or ``min_relevance`` is
    dropped (rule judge_rejected, the verdict in the reject). The endpoint fields left None
    take the teacher's; timeouts, retries, workers, the error threshold and the response
    cache are always the teacher's (``qa.teacher``).
    """

    enabled: bool = Field(default=False, description="Judge every pair before it is written.")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible API root; None: teacher.base_url."
    )
    model: str | None = Field(default=None, description="Judge model; None: teacher.model.")
    api_key_env: str | None = Field(
        default=None, min_length=1,
        description="Environment variable holding the judge's API key; None: "
        "teacher.api_key_env.",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, ge=1, le=32768)
    min_faithfulness: int = Field(
        default=4, ge=1, le=5,
        description="Least faithfulness score (1-5: the answer is supported by the context).",
    )
    min_relevance: int = Field(
        default=4, ge=1, le=5,
        description="Least relevance score (1-5: the answer answers the question).",
    )
    keep_unjudged: bool = Field(
        default=False,
        description="Keep a pair whose judge request failed (judge_error) or whose verdict "
        "could not be read (judge_invalid); the failure is recorded in the rejects either way.",
    )


class DomainProfile(StrictModel):
    """A document domain told by its vocabulary (lemmas counted per 1,000 words)."""

    keywords: tuple[str, ...] = Field(
        min_length=1, description="Lemmas (dictionary forms, lower case) that mark the domain."
    )
    min_score: float = Field(
        default=10.0, ge=0.0,
        description="Keyword lemmas per 1,000 words a document needs to get this profile.",
    )
    min_distinct: int = Field(
        default=3, ge=1,
        description="Different keywords a document needs (one word repeated is no evidence).",
    )


def default_domain_profiles() -> dict[str, DomainProfile]:
    """Geology (ore deposits and oil and gas fields) and legal texts; anything else is other."""
    return {
        "geology": DomainProfile(keywords=(
            "месторождение", "руда", "рудный", "рудопроявление", "жила", "залежь", "пласт",
            "скважина", "запас", "ресурс", "нефть", "нефтяной", "газ", "газовый", "конденсат",
            "геологический", "геология", "геолог", "порода", "минерал", "минерализация",
            "разведка", "разведочный", "бурение", "керн", "коллектор", "пористость",
            "проницаемость", "добыча", "интрузия", "свита", "горизонт", "горный", "выработка",
            "шахта", "карьер", "отвал", "золото", "серебро", "медь", "полезный", "ископаемое",
            "недра", "литология", "тектонический", "разлом", "обогащение", "геофизический",
            "нефтенасыщенность", "дебит", "обводнённость", "продуктивный", "песчаник",
            "известняк", "глина", "кварц", "сульфидный", "проба", "содержание", "геохимический",
        )),
        "legal": DomainProfile(keywords=(
            "статья", "закон", "кодекс", "федеральный", "пункт", "часть", "постановление",
            "приказ", "право", "обязанность", "ответственность", "штраф", "суд", "судебный",
            "орган", "гражданин", "юридический", "работодатель", "работник", "договор",
            "соглашение", "нормативный", "правовой", "регулирование", "редакция", "исполнительный",
            "полномочие", "административный", "уголовный", "наказание", "правонарушение",
            "лицо", "порядок", "установленный", "предусмотренный", "настоящий", "подпункт",
            "законодательство", "постановлять", "утверждать", "прокурор", "прокуратура",
        ), min_score=30.0),
    }


class QAConfig(StrictModel):
    """Template QA synthesis from entities (`geomas generate-qa-pairs`)."""

    templates: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description=(
            "Question templates per entity type, replacing the built-in ones for that type "
            "(or adding a type). Placeholders: {entity} (entity text), {deposit} (deposit "
            "name found in the document; templates with it are skipped when none is found)."
        ),
    )
    max_context_length: int = Field(
        default=300, ge=20, le=100_000, description="Most characters of a pair's context."
    )
    add_context: bool = Field(
        default=True, description="Give each pair a context window (the instruct input)."
    )
    num_pairs: int = Field(default=2, ge=1, le=1000, description="Most QA pairs per chunk.")
    seed: int = Field(default=0, description="Seed of template and entity-type choices.")
    min_entity_confidence: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Entities below this NER confidence are rejected."
    )
    profiles: dict[str, DomainProfile] = Field(
        default_factory=default_domain_profiles,
        description="Document domains by vocabulary; each document gets the best-scoring one "
        "above its min_score, else 'other' (recorded in qa_summary.json with the evidence).",
    )
    template_profiles: tuple[str, ...] = Field(
        default=("geology",),
        description="Profiles whose documents get NER-template pairs (the built-in templates "
        "ask about ore deposits and oil and gas fields); others: rejects off_profile.",
    )
    question_kinds: dict[str, tuple[QuestionKind, ...]] = Field(
        default_factory=default_question_kinds,
        description="Answer-first question kinds asked of the documents of each profile "
        "(the question is built from the answer sentence: quantity, date, place, definition, "
        "duty...; see docs/dataset.md); a profile left out gets none.",
    )
    answer_types: dict[str, AnswerTypeRule] = Field(
        default_factory=default_answer_types,
        description="Per entity type, what the answer of a template pair must carry (lexicon "
        "lemmas, a number, a unit); pairs that do not are rejected (answer_type_mismatch). A "
        "type left out is not gated.",
    )
    ner_shift: NerShiftConfig = NerShiftConfig()
    min_entity_chars: int = Field(
        default=3, ge=1, le=100,
        description="Entities with fewer letters are rejected (entity_too_short), except "
        "chemical element symbols (Au, Cu, W).",
    )
    answer_mode: Literal["sentence", "clause"] = Field(
        default="sentence",
        description=(
            "sentence: the answer is the sentence(s) holding the entity; clause: the part of "
            "that sentence between the ';' / ',' boundaries around the entity."
        ),
    )
    mode: Literal["templates", "teacher", "hybrid"] = Field(
        default="templates",
        description="Who writes the pairs. templates: geomas's local generators (NER templates "
        "and the rules over each chunk's text, no server); teacher: the LLM teacher writes up "
        "to num_pairs pairs from each chunk's text; hybrid: both. teacher/hybrid need "
        "teacher.base_url and teacher.model.",
    )
    teacher: TeacherConfig = TeacherConfig()
    judge: JudgeConfig = JudgeConfig()

    @model_validator(mode="after")
    def _templates_and_teacher(self) -> QAConfig:
        from string import Formatter

        for label, variants in self.templates.items():
            if not variants:
                raise ValueError(f"templates[{label!r}] is empty; give at least one question")
            for t in variants:
                names = {f for _, f, _, _ in Formatter().parse(t) if f is not None}
                unknown = names - {"entity", "deposit"}
                if unknown:
                    raise ValueError(
                        f"templates[{label!r}] template {t!r} uses unknown placeholders "
                        f"{sorted(unknown)}; allowed: {{entity}}, {{deposit}}"
                    )
            if all("{deposit}" in t for t in variants):
                raise ValueError(
                    f"templates[{label!r}]: every template needs {{deposit}}; add one without "
                    "it for documents where no deposit name is found"
                )
        if self.teacher.enabled and self.teacher.mode == "answer" and not self.add_context:
            raise ValueError(
                "teacher.mode='answer' needs add_context=true: teacher answers are written and "
                "checked against the pair's context"
            )
        missing = [p for p in self.template_profiles if p not in self.profiles]
        if missing:
            raise ValueError(f"template_profiles {missing} are not among qa.profiles "
                             f"({sorted(self.profiles)}); define them or remove them")
        return self

    @model_validator(mode="after")
    def _llm_endpoints(self) -> QAConfig:
        if self.mode != "templates" and (not self.teacher.base_url or not self.teacher.model):
            raise ValueError(
                f"qa.mode={self.mode!r} needs teacher.base_url (an OpenAI-compatible API root "
                "such as http://127.0.0.1:8000/v1) and teacher.model; set both or use "
                "qa.mode='templates'"
            )
        judge = self.judge
        if judge.enabled and (not (judge.base_url or self.teacher.base_url)
                              or not (judge.model or self.teacher.model)):
            raise ValueError(
                "qa.judge.enabled needs judge.base_url and judge.model (or teacher.base_url and "
                "teacher.model, which the judge then shares); set them or disable the judge"
            )
        return self


FormatType = Literal[
    "alpaca", "messages", "sharegpt", "prompt-completion", "text", "vertex", "classification"
]
LineageMode = Literal["sidecar", "inline", "none"]


class SplitConfig(StrictModel):
    """Train/val/test split of examples: grouped by document, stratified by class, seeded."""

    val_ratio: float = Field(
        default=0.1,
        gt=0.0,
        lt=1.0,
        description="Share of records for validation (the original --split-ratio 0.9 = 0.1 val).",
    )
    test_ratio: float = Field(
        default=0.1, ge=0.0, lt=1.0,
        description="Share of records for a test split (held out from training and early "
        "stopping; the promotion gate judges on it); 0: none. The original "
        "`format-instruct-dataset --split-ratio R` gives train/val only unless this is set.",
    )
    seed: int = Field(default=42, description="Seed of the group shuffle and record allocation.")
    stratify_by: Literal["label"] | None = Field(
        default="label",
        description="Example field whose class shares each split keeps; None: no stratification.",
    )
    group_by: Literal["group"] | None = Field(
        default="group",
        description=(
            "Example field whose values never span two splits (doc_id); None: records are "
            "split independently. Records without a value are groups of their own."
        ),
    )
    min_samples_per_class: int = Field(
        default=10,
        ge=0,
        description="Classes with fewer records are handled by `policy`; 0 turns it off.",
    )
    policy: Literal["merge_other", "drop", "oversample_train"] = Field(
        default="merge_other",
        description=(
            "merge_other: relabel small classes as `other_label`; drop: reject their records "
            "(rule min_samples); oversample_train: duplicate their train records up to "
            "min_samples_per_class (val/test are never oversampled)."
        ),
    )
    other_label: str = Field(default="other", min_length=1)
    share_tolerance: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description=(
            "Largest accepted gap between a class's share of a split and its overall share; "
            "larger gaps are listed in the split report."
        ),
    )

    @model_validator(mode="after")
    def _train_left(self) -> SplitConfig:
        if self.val_ratio + self.test_ratio >= 1.0:
            raise ValueError(
                f"val_ratio ({self.val_ratio}) + test_ratio ({self.test_ratio}) leaves no "
                "records for training; keep their sum below 1"
            )
        return self

    @property
    def train_ratio(self) -> float:
        """Share of records for training."""
        return 1.0 - self.val_ratio - self.test_ratio


class FormatConfig(StrictModel):
    """Output format of instruction datasets (`geomas format-instruct-dataset`)."""

    format_type: FormatType = Field(
        default="alpaca",
        description=(
            "alpaca (instruction/input/output), messages (OpenAI chat), sharegpt, "
            "prompt-completion, text (one Alpaca-style Russian string), vertex (Vertex AI "
            "supervised tuning), classification (text/label)."
        ),
    )
    jsonl: bool = Field(default=False, description="JSON Lines instead of one JSON list.")
    system_prompt: str | None = Field(
        default=None,
        description="System prompt for examples without one (formats that carry a system turn).",
    )
    split_ratio: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description=(
            "Train share as in the original --split-ratio (0.9 = 90 % train); sets "
            "split.val_ratio to 1 - split_ratio - split.test_ratio. None: SplitConfig decides."
        ),
    )
    lineage: LineageMode = Field(
        default="sidecar",
        description=(
            "sidecar: ids, labels, groups and meta in <stem>.lineage.jsonl next to each file, "
            "which keeps the standard keys only; inline: in an extra `lineage` key per record "
            "(datasets and TRL tolerate it; Vertex AI's schema has no place for it); none: "
            "not kept."
        ),
    )

    @model_validator(mode="after")
    def _vertex_rules(self) -> FormatConfig:
        if self.format_type == "vertex" and not self.jsonl:
            raise ValueError(
                "format_type='vertex' needs jsonl=true: Vertex AI reads JSON Lines only"
            )
        if self.format_type == "vertex" and self.lineage == "inline":
            raise ValueError(
                "format_type='vertex' cannot carry lineage='inline' (Vertex AI's dataset schema "
                "has only systemInstruction and contents); use lineage='sidecar'"
            )
        return self

    def split_config(self, base: SplitConfig | None = None) -> SplitConfig:
        """The split settings: `base` (or the defaults) with `split_ratio` applied."""
        base = base if base is not None else SplitConfig()
        if self.split_ratio is None:
            return base
        if "test_ratio" not in base.model_fields_set:
            # the original command: --split-ratio 0.9 is train 90 %, val 10 %, no test file
            base = SplitConfig.model_validate({**base.model_dump(), "test_ratio": 0.0})
        val = round(1.0 - self.split_ratio - base.test_ratio, 10)
        if val <= 0.0:
            raise ValueError(
                f"split_ratio ({self.split_ratio}) + split.test_ratio ({base.test_ratio}) leaves "
                "no records for validation; lower split_ratio or test_ratio"
            )
        return SplitConfig.model_validate({**base.model_dump(), "val_ratio": val})


def _clean_required_defaults() -> dict[Profile, tuple[str, ...]]:
    # The legal guide's cleaner checks each document for its «мотивировочная часть».
    return {"legal": (r"мотивировочн\w*\s+част",)}


class CleanConfig(StrictModel):
    """Dataset cleaning (`geomas clean-dataset`): normalisation, filters and deduplication.

    Rules run in a fixed order (normalize, empty, length, script, garbage, grounding, profile,
    exact_dup, near_dup); every removed record is written to the rejects with its rule's name.
    """

    profile: Profile = Field(default="geology", description="Selects the per-profile settings.")
    # -- normalisation (changes text, removes nothing)
    dehyphenate: bool = Field(
        default=True,
        description=(
            "Join words split by a hyphen at a line break («место-\\nрождение»). The hyphen is "
            "kept when the second part is capitalised, the first part is in "
            "keep_hyphen_prefixes, or the dataset itself spells the word with a hyphen more "
            "often than without."
        ),
    )
    keep_hyphen_prefixes: tuple[str, ...] = Field(
        default=("северо", "юго"),
        description="Lower-case first parts of compounds always written with a hyphen.",
    )
    furniture_patterns: tuple[str, ...] = Field(
        default=(
            r"(?:стр\.?|страница|с\.|лист|page|p\.)\s*\d{1,4}(?:\s*(?:из|/|of)\s*\d{1,4})?",
            r"[-–—]\s*\d{1,4}\s*[-–—]",
            r"\d{1,4}\s*(?:/|из)\s*\d{1,4}",
        ),
        description=(
            "Page furniture: regular expressions (case-insensitive) matched against whole "
            "stripped lines, which are removed. A bare number line is not matched by default: "
            "in extracted tables it is often data."
        ),
    )
    furniture_repeat_min: int = Field(
        default=3,
        ge=0,
        description=(
            "A short line with letters that occurs this many times in one field is a running "
            "header or footer and is removed everywhere in that field; 0 turns this off."
        ),
    )
    furniture_max_line_chars: int = Field(
        default=80,
        ge=1,
        description="Longest line that can be taken for a running header or footer.",
    )
    # -- empty and length filters
    min_instruction_chars: int = Field(default=5, ge=1)
    max_instruction_chars: int = Field(default=4000, ge=1)
    max_input_chars: int = Field(default=20000, ge=1, description="The input may be empty.")
    min_output_chars: int = Field(default=1, ge=1)
    max_output_chars: int = Field(default=20000, ge=1)
    # -- script filter
    min_cyrillic_share: dict[Profile, float] = Field(
        default_factory=cyrillic_defaults,
        description=(
            "Least share of Cyrillic letters among the letters of instruction+input+output, "
            "by profile; 0 turns the script filter off."
        ),
    )
    # -- garbage filter (whole record)
    min_letter_share: float = Field(
        default=0.4,
        ge=0.0,
        le=1.0,
        description="Least share of letters among the record's non-space characters.",
    )
    max_symbol_share: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description=(
            "Largest share of a field's non-space characters that are neither letters, digits "
            "nor common punctuation (box drawing, private-use glyphs, U+FFFD...)."
        ),
    )
    max_char_run: int = Field(
        default=10, ge=2, description="Longest allowed run of one repeated non-space character."
    )
    max_word_repeat: int = Field(
        default=3, ge=1, description="Most times one word may occur in a row."
    )
    # -- grounding filter
    grounding: bool | None = Field(
        default=None,
        description=(
            "Require the output's words to occur in the input (records with an empty input "
            "pass). None: on for the geology profile, off for legal and generic."
        ),
    )
    grounding_min_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Least share of the output's distinct word stems found in the input.",
    )
    grounding_stem_chars: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Words are compared by their first N characters (Russian inflection).",
    )
    # -- profile rules
    required_output_patterns: dict[Profile, tuple[str, ...]] = Field(
        default_factory=_clean_required_defaults,
        description=(
            "Regular expressions (case-insensitive) the output must all match, by profile; "
            "legal requires the «мотивировочная часть» section."
        ),
    )
    # -- deduplication
    exact_dedup: bool = Field(
        default=True,
        description="Drop records whose case- and space-normalised fields equal an earlier one.",
    )
    near_dedup: bool = Field(default=True, description="Drop near-duplicates (MinHash LSH).")
    near_dup_threshold: float = Field(
        default=0.85,
        gt=0.0,
        le=1.0,
        description=(
            "Jaccard similarity of the word-shingle sets of instruction+input+output at or "
            "above which a record is a near-duplicate of an earlier one (checked exactly; "
            "MinHash LSH only proposes the candidates)."
        ),
    )
    near_dup_num_perm: int = Field(default=128, ge=16, le=1024, description="MinHash size.")
    near_dup_shingle_words: int = Field(
        default=2,
        ge=1,
        le=10,
        description=(
            "Words per shingle. 2 finds one or two small edits in a ~50-word record; with "
            "longer shingles an edit changes more of them, so short records fall below the "
            "threshold."
        ),
    )
    near_dup_question_or_answer: bool = Field(
        default=True,
        description=(
            "Also require the question (the instruction after its task description, i.e. "
            "from «Вопрос:») or the output alone to reach near_dup_threshold. Extractive QA "
            "pairs about one input share nearly all their shingles with it, so different "
            "questions with different answers would otherwise be taken for duplicates."
        ),
    )
    near_dup_seed: int = Field(default=1, description="Seed of the MinHash permutations.")
    # -- report
    diversity_top: int = Field(
        default=10, ge=1, le=1000, description="Repeated instructions listed in the report."
    )

    @model_validator(mode="after")
    def _consistent(self) -> CleanConfig:
        for low, high in (
            ("min_instruction_chars", "max_instruction_chars"),
            ("min_output_chars", "max_output_chars"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(
                    f"{low} ({getattr(self, low)}) is above {high} ({getattr(self, high)})"
                )
        if self.profile not in self.min_cyrillic_share:
            raise ValueError(
                f"min_cyrillic_share has no entry for profile {self.profile!r}; add one "
                "(0 turns the script filter off)"
            )
        for profile, share in self.min_cyrillic_share.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"min_cyrillic_share[{profile!r}] = {share} is not in [0, 1]")
        for name, patterns in (
            ("furniture_patterns", self.furniture_patterns),
            *(
                (f"required_output_patterns[{p!r}]", v)
                for p, v in self.required_output_patterns.items()
            ),
        ):
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(
                        f"{name}: {pattern!r} is not a valid regular expression ({exc})"
                    ) from exc
        return self

    @property
    def cyrillic_min(self) -> float:
        """The Cyrillic share floor for the active profile."""
        return self.min_cyrillic_share[self.profile]

    @property
    def grounding_on(self) -> bool:
        """Whether the grounding filter runs for the active profile."""
        return self.profile == "geology" if self.grounding is None else self.grounding

    @property
    def required_patterns(self) -> tuple[str, ...]:
        """The output patterns of the active profile."""
        return self.required_output_patterns.get(self.profile, ())


class DataPipelineConfig(StrictModel):
    """`geomas run data`: inputs and per-stage settings of the data pipeline."""

    source_dir: Path
    output_dir: Path
    ingest: IngestConfig = IngestConfig()
    validation: ValidationConfig = ValidationConfig()
    ner: NerInferenceConfig = NerInferenceConfig()
    qa: QAConfig = QAConfig()
    clean: CleanConfig = CleanConfig()
    split: SplitConfig = SplitConfig()
    format: FormatConfig = FormatConfig()
    dataset_name: str = Field(default="instruct_dataset", pattern=r"^[\w.-]+$")
