"""Model helpers: tiny offline models for tests and the demo."""

from geomas.models.tiny import corpus_texts, make_tiny, make_tiny_lm, make_tiny_ner

__all__ = ["corpus_texts", "make_tiny", "make_tiny_lm", "make_tiny_ner"]
