"""Synthetic sample corpus: Russian geological deposit reports with gold NER annotations."""

from geomas.sample.corpus import SampleCorpus, generate_sample_corpus

__all__ = ["SampleCorpus", "generate_sample_corpus"]
