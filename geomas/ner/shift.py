"""NER domain shift: a document where the model finds far more entities than it does at home.

A token classifier trained on one kind of report tags common words as entities when it reads
text far from its training data (on a federal law a small geological NER tagged ~100 "entities"
per chunk). Training records the model's own entity density on its held-out records
(`ner_profile.json` next to the model: entities per 1,000 characters, confidence quantiles,
and the annotators' density for comparison). The reference is what the model itself predicts
in domain, not the gold density: a model that over-tags at home over-tags abroad too, and only
the ratio tells a shift. QA compares each document's density with it (`qa.ner_shift`): far
above (`max_ratio`) is a domain shift — a loud warning, recorded in qa_summary.json, and under
the default policy no NER-template pairs for that document.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import mean, quantiles
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from geomas.config.qa_rules import NerShiftConfig
from geomas.errors import InputError
from geomas.io import write_json

log = logging.getLogger(__name__)

NER_PROFILE_FILE = "ner_profile.json"


class NerProfile(BaseModel):
    """A NER model's entity density and confidence on held-out in-domain text."""

    reference: str = Field(description="What the figures were measured on.")
    texts: int
    chars: int
    entities: int
    density: float = Field(description="Predicted entities per 1,000 characters.")
    gold_density: float | None = Field(
        default=None, description="Annotated entities per 1,000 characters of the same texts.")
    confidence: dict[str, float] = Field(
        default_factory=dict, description="p10, p50, p90 and mean of the entity confidences.")
    density_at: dict[str, float] = Field(
        default_factory=dict,
        description="Predicted entities per 1,000 characters at each confidence floor "
        "(ner.min_confidence), so a document is compared at the floor it was tagged with.")

    def reference_density(self, min_confidence: float) -> float:
        """The density at the highest recorded floor not above `min_confidence`."""
        floors = [(float(k), v) for k, v in self.density_at.items()
                  if float(k) <= min_confidence + 1e-9]
        return max(floors)[1] if floors else self.density


class DocumentShift(BaseModel):
    """One document's entity density against the model's reference."""

    doc_id: str
    chars: int
    entities: int
    density: float
    reference: float
    ratio: float
    shifted: bool
    action: str = Field(description="'ner_templates_skipped', 'warned', 'ok' or 'not_judged'.")


#: Confidence floors at which the profile records the model's density.
PROFILE_FLOORS = (0.0, 0.3, 0.5, 0.7, 0.9)


def _per_1000(entities: int, chars: int) -> float:
    return round(1000.0 * entities / chars, 3) if chars else 0.0


def measure_profile(model_dir: Path, texts: Sequence[str], gold_entities: int | None,
                    reference: str, **model_kwargs: Any) -> NerProfile:
    """Run the saved model over `texts` and write its profile to ``ner_profile.json``."""
    from geomas.ner.inference import load_bert_ner_model

    model = load_bert_ner_model(model_dir, min_confidence=0.0, **model_kwargs)
    found = model.extract_batch(list(texts), progress=False)
    confs = [e.confidence for r in found for e in r.entities]
    chars = sum(len(t) for t in texts)
    conf: dict[str, float] = {}
    if confs:
        qs = quantiles(confs, n=10, method="inclusive") if len(confs) > 1 else [confs[0]] * 9
        conf = {"p10": round(qs[0], 4), "p50": round(qs[4], 4), "p90": round(qs[8], 4),
                "mean": round(mean(confs), 4)}
    profile = NerProfile(
        reference=reference, texts=len(texts), chars=chars, entities=len(confs),
        density=_per_1000(len(confs), chars),
        gold_density=_per_1000(gold_entities, chars) if gold_entities is not None else None,
        confidence=conf,
        density_at={f"{f:.1f}": _per_1000(sum(c >= f for c in confs), chars)
                    for f in PROFILE_FLOORS},
    )
    write_json(Path(model_dir) / NER_PROFILE_FILE, profile.model_dump(), indent=1, end="")
    return profile


def load_ner_profile(model_path: str | Path | None) -> NerProfile | None:
    """The model's profile, or None when it has none (a model trained before profiles).

    Raises:
        InputError: the file exists but is not a profile.
    """
    if model_path is None:
        return None
    path = Path(model_path) / NER_PROFILE_FILE
    if not path.is_file():
        return None
    try:
        return NerProfile.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise InputError(f"{path}: not a NER profile ({exc.error_count()} errors); retrain the "
                         "model with geomas train-bert-ner or delete the file") from exc


def check_shift(
    doc_chars: dict[str, int], doc_entities: Counter[str], profile: NerProfile | None,
    config: NerShiftConfig, names: dict[str, str] | None = None, min_confidence: float = 0.0,
) -> dict[str, DocumentShift]:
    """Each document's density against the profile; warns once per shifted document.

    `doc_entities` were extracted with the confidence floor `min_confidence`; the reference is
    the profile's density at the same floor.
    """
    out: dict[str, DocumentShift] = {}
    if config.policy == "off":
        return out
    if profile is None:
        log.warning("the NER model has no %s (trained before geomas recorded it): domain "
                    "shift is not checked; retrain it with geomas train-bert-ner",
                    NER_PROFILE_FILE)
        return out
    reference = profile.reference_density(min_confidence)
    if reference <= 0:
        log.warning("the NER model found no entities on its own held-out data (%s, "
                    "ner.min_confidence %.2f): domain shift is not checked; retrain it with "
                    "more epochs or annotations", NER_PROFILE_FILE, min_confidence)
        return out
    names = names or {}
    by_doc: dict[str, list[str]] = defaultdict(list)
    for doc, chars in doc_chars.items():
        n = doc_entities.get(doc, 0)
        density = _per_1000(n, chars)
        ratio = round(density / reference, 2)
        judged = chars >= config.min_chars
        shifted = judged and ratio > config.max_ratio
        action = ("not_judged" if not judged else
                  "ok" if not shifted else
                  "ner_templates_skipped" if config.policy == "skip" else "warned")
        out[doc] = DocumentShift(doc_id=doc, chars=chars, entities=n, density=density,
                                 reference=reference, ratio=ratio, shifted=shifted,
                                 action=action)
        if shifted:
            by_doc[action].append(doc)
            log.warning(
                "NER DOMAIN SHIFT in %s: %.1f entities per 1,000 characters, %.1f× the model's "
                "%.1f on its held-out data (qa.ner_shift.max_ratio %.1f); %s. Fix: annotate "
                "pages of such documents (geomas export-annotations) and retrain the NER",
                names.get(doc, doc), density, ratio, reference, config.max_ratio,
                "no NER-template pairs from it (qa.ner_shift.policy=skip)"
                if config.policy == "skip" else "its NER-template pairs are kept "
                "(qa.ner_shift.policy=warn)")
    return out
