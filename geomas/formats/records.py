"""Record models of the dataset formats: what each format's record holds, defined once.

The readers (`geomas.formats.codecs.from_record`) parse records with these models, and
``validate-dataset`` validates with them, passing ``context={"filled": True}`` so that empty
texts, conversations without turns and empty ``parts`` lists are problems too (readers let them
through: cleaning rejects an empty answer with its reason). Every validation error becomes a
`Problem` named after its rule: ``missing_field``, ``wrong_type``, ``empty_field``, ``bad_role``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from geomas.config import FormatType
from geomas.formats.example import Example

_EXPECTED = {"string_type": "a string", "list_type": "a list", "dict_type": "an object",
             "model_type": "an object"}


class Problem(NamedTuple):
    """One thing wrong with a record: the field (``messages[1].content``), rule and message."""

    field: str
    rule: str
    message: str


def _problem(err: ErrorDetails) -> Problem:
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
    kind = err["type"]
    if kind == "missing":
        return Problem(field, "missing_field", f"record has no {field!r}")
    if kind == "literal_error":  # the only Literals are roles
        expected = (err.get("ctx") or {}).get("expected")
        return Problem(field, "bad_role", f"{field!r} must be {expected}, got {err['input']!r}")
    if kind in _EXPECTED:
        kind, text = "wrong_type", f"must be {_EXPECTED[kind]}, got {type(err['input']).__name__}"
    else:  # the errors raised below are named after their rule
        text = err["msg"]
    return Problem(field, "missing_field" if err["input"] is None else kind, f"{field!r} {text}")


def _filled(rule: str, message: str) -> AfterValidator:
    """Refuse a blank string or an empty list, when validating with ``{"filled": True}``."""

    def check(value: Any, info: ValidationInfo) -> Any:
        blank = not value.strip() if isinstance(value, str) else value == []
        if blank and (info.context or {}).get("filled"):
            raise PydanticCustomError(rule, message)
        return value

    return AfterValidator(check)


def _str_or_int(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError(
            "wrong_type", "must be a string or an integer, got {got}", {"got": type(value).__name__}
        )
    return value


Text = Annotated[str, _filled("empty_field", "is empty")]
Key = Annotated[str | int, BeforeValidator(_str_or_int)]
_NO_TURNS = _filled("empty_field", "has no turns")
_PARTS = _filled("wrong_type", 'must be a non-empty list of {"text": ...} parts')


class FormatRecord(BaseModel):
    """Base of the record models: strict types, unknown keys ignored."""

    model_config = ConfigDict(strict=True)
    #: What `parse` adds to its message after the record's keys.
    HINT: ClassVar[str] = ""

    @classmethod
    def problems(cls, record: Mapping[str, Any], *, filled: bool = False) -> list[Problem]:
        """Everything wrong with a decoded record, in field order (empty when it fits)."""
        try:
            cls.model_validate(dict(record), context={"filled": filled})
        except ValidationError as exc:
            return list(dict.fromkeys(map(_problem, exc.errors())))
        return []

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> Self:
        """Validate a decoded record.

        Raises:
            ValueError: The record does not fit; the message names each field.
        """
        try:
            return cls.model_validate(dict(record))
        except ValidationError as exc:
            problems = "; ".join(dict.fromkeys(_problem(err).message for err in exc.errors()))
            keys = ", ".join(sorted(record)) or "none"
            raise ValueError(f"{problems} (keys: {keys}){cls.HINT}") from None


class AlpacaRecord(FormatRecord):
    """One alpaca record: instruction, input, output, and the lineage alpaca files carry.

    Besides the texts (and ``system``), an alpaca record may hold ``id``, ``label``, ``group``,
    ``meta`` (geomas's lineage), ``metadata`` (the provenance the legal guide's generating GUI
    writes: provider, mode, timestamp, version...) and any other key (qa_id, entity_type...);
    ``metadata``, ``meta`` and the other keys all become `Example.meta`, which is how
    merge-datasets knows where each record came from.
    """

    model_config = ConfigDict(extra="allow", strict=True)
    HINT = ("; an alpaca record has instruction and output strings (convert other formats with "
            "geomas.formats)")

    id: Key | None = None
    instruction: Text
    input: str | None = None
    output: Text
    system: str | None = None
    label: Key | None = None
    group: Key | None = None
    meta: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def provenance(self) -> dict[str, Any]:
        """``metadata``, then ``meta``, then every other key, as one lineage dict."""
        return {**(self.metadata or {}), **(self.meta or {}), **(self.model_extra or {})}

    @classmethod
    def from_example(cls, example: Example) -> AlpacaRecord:
        """The record with the lineage at the top level (clean-dataset and merge-datasets)."""
        return cls(
            id=example.id, instruction=example.instruction, input=example.input,
            output=example.output, system=example.system, label=example.label,
            group=example.group, meta=example.meta or None,
        )


class _Message(FormatRecord):
    role: Literal["system", "user", "assistant", "tool"]
    content: Text


class _ShareGPTTurn(FormatRecord):
    speaker: Literal["system", "human", "gpt", "user", "assistant"] = Field(alias="from")
    value: Text


class _VertexPart(FormatRecord):
    text: Text


class _VertexSystem(FormatRecord):
    parts: Annotated[list[_VertexPart], _PARTS]


class _VertexTurn(_VertexSystem):
    role: Literal["user", "model"]


class MessagesRecord(FormatRecord):
    """OpenAI chat: ``{"messages": [{"role", "content"}, ...]}``."""

    messages: Annotated[list[_Message], _NO_TURNS]


class ShareGPTRecord(FormatRecord):
    """ShareGPT: ``{"conversations": [{"from", "value"}, ...]}``."""

    conversations: Annotated[list[_ShareGPTTurn], _NO_TURNS]


class VertexRecord(FormatRecord):
    """Vertex AI supervised tuning: ``{"systemInstruction"?, "contents": [{"role", "parts"}]}``."""

    systemInstruction: _VertexSystem | None = None
    contents: Annotated[list[_VertexTurn], _NO_TURNS]


class PromptCompletionRecord(FormatRecord):
    """``{"prompt", "completion"}``."""

    prompt: Text
    completion: Text


class TextRecord(FormatRecord):
    """``{"text"}``."""

    text: Text


class ClassificationRecord(FormatRecord):
    """``{"text", "label"}`` with a string or integer label."""

    text: Text
    label: Annotated[Key, _filled("empty_field", "is empty")]


#: The model of each format, in the order `geomas.formats.codecs.detect_format` tries them.
RECORD_MODELS: dict[FormatType, type[FormatRecord]] = {
    "messages": MessagesRecord,
    "sharegpt": ShareGPTRecord,
    "vertex": VertexRecord,
    "prompt-completion": PromptCompletionRecord,
    "alpaca": AlpacaRecord,
    "classification": ClassificationRecord,
    "text": TextRecord,
}
