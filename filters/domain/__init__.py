"""Domain classifier: fastText supervised on Chinese character (and optionally jieba word) features."""
