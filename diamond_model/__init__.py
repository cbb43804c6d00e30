"""Diamond appraisal engine: validation, explainable monotone price model, store, retraining."""

__version__ = "0.1.0"
