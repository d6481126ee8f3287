"""Synthetic sample corpus: Russian geological deposit reports with gold NER annotations."""

from geomas.sample.corpus import BadFile, SampleCorpus, SampleDocument, generate_sample_corpus

__all__ = ["BadFile", "SampleCorpus", "SampleDocument", "generate_sample_corpus"]
