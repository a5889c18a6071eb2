"""The ML signal pipeline: a dataset from candles (``dataset``), a classifier trained on purged
walk-forward splits (``train``), versioned model artefacts (``artifact``) and monitoring of a
deployed model (``monitor``). The strategy that trades a model is ``strategy.ml_classifier``."""
