"""Shapes every part of the API shares: grades, times, problem documents."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from diamond_model.data.schema import (
    CLARITIES,
    COLORS,
    CUTS,
    GRADE_ALIASES,
    GRADES,
    beyond_scale_reason,
    grade_key,
)

# Stored times are naive UTC (SQLite keeps no zone); the API says so explicitly.
UtcDatetime = Annotated[
    datetime, AfterValidator(lambda d: d.replace(tzinfo=UTC) if d.tzinfo is None else d)
]

Cut = Enum("Cut", {name.upper().replace(" ", "_"): name for name in CUTS}, type=str)
Color = Enum("Color", {name: name for name in COLORS}, type=str)
Clarity = Enum("Clarity", {name: name for name in CLARITIES}, type=str)


def grade(column: str) -> BeforeValidator:
    """Accept a grade as the core reads it: any letter case and spacing ('very  good' is Very
    Good, 'VS-1' is VS1), and the names grading reports use ('Excellent' is Ideal). A real grade
    beyond these appraisals (colour K, clarity I2) is refused with that reason."""
    lookup = {grade_key(column, g): g for g in GRADES[column]} | {
        alias: to for alias, (to, _) in GRADE_ALIASES[column].items()
    }

    def normalise(value: Any) -> Any:
        if isinstance(value, str):
            if (reason := beyond_scale_reason(column, value[:40])) is not None:
                raise ValueError(reason)
            return lookup.get(grade_key(column, value), value)
        return value

    return BeforeValidator(normalise)


def printable(value: object, limit: int = 200) -> str | None:
    """A received value as text safe to send back (no lone surrogates), or None."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[:limit].encode("utf-8", "replace").decode("utf-8")


class FieldError(BaseModel):
    """One problem with one input field."""

    field: str = Field(description="Which field (for a batch row: the stone's field).")
    value: str | None = Field(None, description="The value received, as text.")
    reason: str = Field(description="What is wrong and what is accepted.")


class Problem(BaseModel):
    """Every error, in the RFC 9457 'problem details' shape (application/problem+json)."""

    type: str = Field(
        description="The absolute URI of a page describing this kind of problem and what to do.",
        examples=["https://api.example.com/problems/invalid-input"],
    )
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["cut: 'Excelent' is not a cut grade: use one of Fair, ..."])
    errors: list[FieldError] = Field(default_factory=list)
    error_id: str | None = Field(
        None,
        description="Server errors only: the id under which the failure was logged (quote it "
        "when reporting the problem).",
        examples=["5f0c2a9e4b7d4e21"],
    )
    request_id: str | None = Field(
        None,
        description="The request's id, as in the X-Request-ID header of the answer (yours when "
        "you sent a valid one): quote it to support.",
        examples=["3b9d0c6e1f2a4c58a7e0d5b1c2f3a4e5"],
    )
