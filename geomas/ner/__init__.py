"""Named-entity recognition for geological texts (17 entity types).

`from geomas.ner import load_bert_ner_model` is the original tool's Python API.
"""

from geomas.ner.inference import BertNerModel, Entity, NerResult, load_bert_ner_model

__all__ = ["BertNerModel", "Entity", "NerResult", "load_bert_ner_model"]
