"""The original tool's import path for the NER loader, kept for existing scripts."""

from geomas.ner.inference import BertNerModel, Entity, NerResult, load_bert_ner_model

__all__ = ["BertNerModel", "Entity", "NerResult", "load_bert_ner_model"]
