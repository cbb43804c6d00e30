"""The named values the product records and compares: statuses, confidence levels, key scopes."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """What became of a retrain attempt."""

    RUNNING = "running"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    FAILED = "failed"
    ABANDONED = "abandoned"


class VersionStatus(StrEnum):
    """Where a model version stands."""

    CHAMPION = "champion"
    CANDIDATE = "candidate"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class Inputs(StrEnum):
    """Which regressor priced a stone."""

    ALL = "all inputs"
    FOUR_C = "4Cs only"


class Confidence(StrEnum):
    """How much a quote can be leaned on; low means a wider range and the reasons say why."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Scope(StrEnum):
    """What an API key may do."""

    QUOTE = "quote"
    DATA_READ = "data:read"  # stored appraisals and batches (data:write includes it)
    DATA_WRITE = "data:write"
    MODELS_WRITE = "models:write"
    ADMIN = "admin"  # the operator: reads every client's quote records
