"""How the product writes, in one place: a sentence starts with a capital; money is dollars."""

from __future__ import annotations


def sentence(text: str) -> str:
    """`text` with its first letter a capital (the rest as written)."""
    return text[0].upper() + text[1:] if text else text


def clause(text: str) -> str:
    """`text` with its first letter small, to go on after other words."""
    return text[0].lower() + text[1:] if text else text


def money(value: float) -> str:
    """Whole dollars with thousands separators: $12,345."""
    return f"${value:,.0f}"
