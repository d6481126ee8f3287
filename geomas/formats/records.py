"""Record models of dataset formats: the alpaca record, as every reader and writer sees it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from geomas.formats.example import Example

_EXPECTED = {"meta": "an object", "metadata": "an object"} | dict.fromkeys(
    ("id", "label", "group"), "a string or an integer"
)


class AlpacaRecord(BaseModel):
    """One alpaca record: instruction, input, output, and the lineage alpaca files carry.

    Besides the texts (and ``system``), an alpaca record may hold ``id``, ``label``, ``group``,
    ``meta`` (geomas's lineage), ``metadata`` (the provenance the legal guide's generating GUI
    writes: provider, mode, timestamp, version...) and any other key (qa_id, entity_type...);
    ``metadata``, ``meta`` and the other keys all become `Example.meta`, which is how
    merge-datasets knows where each record came from.
    """

    model_config = ConfigDict(extra="allow", strict=True)

    id: str | int | None = None
    instruction: str
    input: str | None = None
    output: str
    system: str | None = None
    label: str | int | None = None
    group: str | int | None = None
    meta: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    @classmethod
    def parse(cls, record: dict[str, Any]) -> AlpacaRecord:
        """Validate a decoded record.

        Raises:
            ValueError: A text is missing or not a string, or a lineage key has the wrong
                type; the message names each field.
        """
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            problems = dict.fromkeys(  # a union field fails once per member: say it once
                f"record has no {err['loc'][0]!r}" if err["type"] == "missing" else
                f"{err['loc'][0]!r} must be {_EXPECTED.get(str(err['loc'][0]), 'a string')}, "
                f"got {type(record.get(str(err['loc'][0]))).__name__}"
                for err in exc.errors()
            )
            raise ValueError(
                f"{'; '.join(problems)} (keys: {', '.join(sorted(record)) or 'none'}); an "
                "alpaca record has instruction and output strings (convert other formats with "
                "geomas.formats)"
            ) from None

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
