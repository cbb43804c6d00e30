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


def band_labels(edges: tuple[float, ...], unit: str) -> list[str]:
    """One label per band between `edges`, in carats ("ct") or dollars ("$"): 'up to 0.5 ct',
    '0.5–1 ct', 'over 2 ct'; 'up to $1,000', '$1,000–2,000', 'over $10,000'. Tables and sentences
    ("a D IF stone weighing over 2 ct") use the same words."""

    def amount(value: float) -> str:
        return f"${value:,.0f}" if unit == "$" else f"{value:g} ct"

    labels = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        if low <= 0:
            labels.append(f"up to {amount(high)}")
        elif high == float("inf"):
            labels.append(f"over {amount(low)}")
        elif unit == "$":
            labels.append(f"${low:,.0f}–{high:,.0f}")
        else:
            labels.append(f"{low:g}–{high:g} ct")
    return labels


def and_list(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def month_words(period: str) -> str:
    """'2026-01' as 'January 2026' (anything else as given)."""
    try:
        year, month = (int(part) for part in period.split("-"))
        return f"{_MONTHS[month - 1]} {year}"
    except (ValueError, IndexError):
        return period


_MONTHS = (
    "January February March April May June July August September October November December"
).split()
