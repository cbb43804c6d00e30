"""The appraisal record: columns, grade scales (worst to best) and plausible physical ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache

import pandas as pd

CUTS: tuple[str, ...] = ("Fair", "Good", "Very Good", "Premium", "Ideal")
COLORS: tuple[str, ...] = ("J", "I", "H", "G", "F", "E", "D")
CLARITIES: tuple[str, ...] = ("I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF")

GRADES: dict[str, tuple[str, ...]] = {"cut": CUTS, "color": COLORS, "clarity": CLARITIES}

GRADE_HELP: dict[str, dict[str, str]] = {
    "cut": {
        "Fair": "Poorly proportioned; leaks light, looks dull.",
        "Good": "Acceptable proportions; some light lost.",
        "Very Good": "Well proportioned; bright, close to top grades.",
        "Premium": "Excellent proportions, often slightly larger spread.",
        "Ideal": "Best proportions and symmetry; maximum sparkle.",
    },
    "color": {
        "J": "Faint yellow tint, visible in larger stones.",
        "I": "Faint tint, slightly detectable.",
        "H": "Near colourless; tint hard to see.",
        "G": "Near colourless; the most common fine grade.",
        "F": "Colourless; only an expert sees a trace.",
        "E": "Colourless.",
        "D": "Absolutely colourless; the rarest grade.",
    },
    "clarity": {
        "I1": "Included: inclusions visible to the naked eye.",
        "SI2": "Slightly included; may be eye-visible.",
        "SI1": "Slightly included; usually eye-clean.",
        "VS2": "Very slightly included; seen under 10x magnification.",
        "VS1": "Very slightly included; hard to see under 10x.",
        "VVS2": "Very, very slightly included; very hard to see under 10x.",
        "VVS1": "Very, very slightly included; extremely hard to see under 10x.",
        "IF": "Internally flawless.",
    },
}

MEASUREMENTS: tuple[str, ...] = ("depth", "table", "x", "y", "z")
SIZE_AXES: tuple[str, ...] = ("x", "y", "z")
FOUR_C: tuple[str, ...] = ("carat", "cut", "color", "clarity")
STONE_COLUMNS: tuple[str, ...] = ("carat", "cut", "color", "clarity", *MEASUREMENTS)
# When the stone was appraised (ISO date). Optional in uploads: absent, the upload date is used.
APPRAISED_ON = "appraised_on"
# The bundled appraisals carry no date; they are all dated the day the expert's work was handed
# over (datasets/diamonds/README.md).
BUNDLED_APPRAISED_ON = date(2026, 1, 1)
BUNDLED_UPLOADER = "bundled dataset"
APPRAISAL_COLUMNS: tuple[str, ...] = (
    "carat",
    "cut",
    "color",
    "clarity",
    "depth",
    "table",
    "price",
    "x",
    "y",
    "z",
)

# A real row of the bundled data (line 2): the example in docs, templates, tests and benchmarks.
EXAMPLE_APPRAISAL: dict[str, object] = {
    "carat": 1.1,
    "cut": "Ideal",
    "color": "H",
    "clarity": "SI2",
    "depth": 62.0,
    "table": 55.0,
    "price": 4733,
    "x": 6.61,
    "y": 6.65,
    "z": 4.11,
}
EXAMPLE_STONE: dict[str, object] = {k: v for k, v in EXAMPLE_APPRAISAL.items() if k != "price"}

UNITS: dict[str, str] = {
    "carat": "ct",
    "depth": "%",
    "table": "%",
    "x": "mm",
    "y": "mm",
    "z": "mm",
    "price": "$",
}

LABELS: dict[str, str] = {
    "carat": "Carat",
    "cut": "Cut",
    "color": "Color",
    "clarity": "Clarity",
    "depth": "Depth %",
    "table": "Table %",
    "x": "Length x",
    "y": "Width y",
    "z": "Total depth",
    "price": "Price",
    APPRAISED_ON: "Appraised on",
}


@dataclass(frozen=True)
class Range:
    """A closed plausible interval; values outside are rejected as physically implausible."""

    low: float
    high: float
    low_inclusive: bool = True

    def describe(self, unit: str) -> str:
        """Human wording, e.g. 'more than 0 mm and at most 30 mm'."""

        def amount(value: float) -> str:
            return f"${value:,.0f}" if unit == "$" else f"{value:g} {unit}"

        left = "at least" if self.low_inclusive else "more than"
        return f"{left} {amount(self.low)} and at most {amount(self.high)}"


# Ranges are generous envelopes around what exists: the largest polished diamonds traded in
# jewellery shops are far below 30 ct; depth and table outside 40-80 % are not round brilliants
# (of the 53,940 public appraisals this data comes from, every table lies within 43-79 % but one
# of 95 %, a stone with almost no crown: in the bundled file too, a typing error); a 30 mm girdle
# would be a museum piece. Values outside are typing errors, not rare stones. The lightest stones
# traded are melee of about 0.001 ct (a point is 0.01 ct; the smallest sieve sizes weigh ~0.001
# ct): anything lighter is dust or a typing error, and priced it would read "$0.00".
MIN_CARAT = 0.001
RANGES: dict[str, Range] = {
    "carat": Range(MIN_CARAT, 30.0),
    "depth": Range(40.0, 80.0),
    "table": Range(40.0, 80.0),
    "x": Range(0.0, 30.0, low_inclusive=False),
    "y": Range(0.0, 30.0, low_inclusive=False),
    "z": Range(0.0, 30.0, low_inclusive=False),
    "price": Range(0.0, 5_000_000.0, low_inclusive=False),
}

# Price per carat: the 53,940 public appraisals this data comes from range from $1,051 to
# $17,829 per carat. Below $200/ct a price is almost surely a thousands separator read as a
# decimal point ("4.733" for $4,733); above $1,000,000/ct it is beyond any white diamond sold.
PRICE_PER_CARAT = Range(200.0, 1_000_000.0)

# A round brilliant's weight follows from its size: carat ≈ k · d² · h, d the mean girdle diameter
# (x + y) / 2 and h the total depth z, in mm. Fitted on the 4,985 bundled appraisals as the median
# of log(carat / (d² · h)) (k = 0.006115; the same on 48,931 other public appraisals: 0.006117),
# with a robust spread (1.4826 × median absolute deviation) of 1.7 %. More than 10 % apart (about
# six spreads) is not rounding: 0.04 % of the bundled and 0.19 % of the other appraisals are, and
# their millimetres belong to another stone or were mistyped. `analysis.size_constant` refits both.
SIZE_CONSTANT = 0.006115
SIZE_SPREAD = 0.017
SIZE_TOLERANCE = 0.10

# Depth % is defined as 2·z / (x + y) · 100. In the bundled 5,000 appraisals 99.9 % of rows agree
# within 1.03 points (rounding of x, y, z to 0.01 mm alone moves it by up to ~0.3 point on small
# stones); the three rows beyond 2 points are clear entry errors (z = 1.41 mm on a 7.3 mm stone,
# depth 44 % on a 4.1 mm-deep stone, z = 6.16 mm on a 7.9 mm stone). 2 points keeps the rest.
DEPTH_TOLERANCE_POINTS = 2.0


def implied_carat(x: float, y: float, z: float) -> float:
    """The weight a round brilliant of these millimetres has (see SIZE_CONSTANT)."""
    return SIZE_CONSTANT * ((x + y) / 2) ** 2 * z


@cache
def grade_dtype(column: str) -> pd.CategoricalDtype:
    """The ordered pandas dtype of a grade column (worst grade first)."""
    return pd.CategoricalDtype(categories=list(GRADES[column]), ordered=True)


# Header names people's spreadsheets use, Italian and English, for each column (compared
# case-insensitively with spaces collapsed). Said in the preview: "read 'Carati' as carat".
HEADER_NAMES: dict[str, str] = {
    alias: column
    for column, aliases in {
        "carat": (
            "carati",
            "carato",
            "peso",
            "peso (ct)",
            "carat weight",
            "carats",
            "weight",
            "weight (ct)",
            "ct",
        ),
        "cut": ("taglio", "cut grade", "qualità del taglio"),
        "color": ("colore", "colour", "color grade", "colour grade"),
        "clarity": ("purezza", "clarity grade", "grado di purezza"),
        "price": (
            "prezzo",
            "prezzo (usd)",
            "prezzo ($)",
            "prezzo usd",
            "price (usd)",
            "price ($)",
            "price usd",
            "usd",
        ),
        "depth": (
            "profondità",
            "profondita",
            "profondità %",
            "depth %",
            "depth (%)",
            "total depth",
            "total depth (%)",
        ),
        "table": ("tavola", "tavola %", "table %", "table (%)", "table size"),
        "x": ("lunghezza", "lunghezza (mm)", "length", "length (mm)"),
        "y": ("larghezza", "larghezza (mm)", "width", "width (mm)"),
        "z": ("altezza", "altezza (mm)", "height", "height (mm)"),
        "appraised_on": (
            "data",
            "data perizia",
            "data della perizia",
            "date",
            "appraisal date",
            "appraised on",
        ),
    }.items()
    for alias in aliases
}


def header_column(name: str) -> str:
    """The column a header names: its own name, lower-case, or the one its alias stands for."""
    key = " ".join(str(name).split()).casefold()
    return HEADER_NAMES.get(key, key)


# ---- grades as grading reports write them ------------------------------------------------------
# Read as this scale's grades, and said so ("read as Ideal"): GIA, IGI and HRD call the top cut
# grade Excellent, where these appraisals say Ideal; reports abbreviate; the European piqué P1 is
# I1. Keys as `grade_key` writes them.
GRADE_ALIASES: dict[str, dict[str, tuple[str, str]]] = {
    "cut": {
        "excellent": ("Ideal", "'Excellent' (GIA's, IGI's and HRD's top cut grade) read as Ideal"),
        "ex": ("Ideal", "'EX' (Excellent) read as Ideal"),
        "vg": ("Very Good", "'VG' read as Very Good"),
    },
    "color": {},
    "clarity": {
        "p1": ("I1", "'P1' (piqué 1) read as I1"),
        "pk1": ("I1", "'PK1' (piqué 1) read as I1"),
        "loupeclean": ("IF", "'Loupe clean' read as IF"),
        "lc": ("IF", "'LC' (loupe clean) read as IF"),
    },
}
# Real grades outside these appraisals: refused with this reason rather than priced, because the
# model is monotone but flat beyond its data, so a K stone would be priced as a J one and an I2
# as an I1 (too high), an FL as an IF (too low). Honest is "ask the expert".
BEYOND_SCALE: dict[str, dict[str, str]] = {
    "cut": {"poor": "a cut grade below Fair"},
    "color": {
        letter.casefold(): "a colour grade below J (more tint)" for letter in "KLMNOPQRSTUVWXYZ"
    }
    | {"fancy": "a fancy colour, priced on other rules"},
    "clarity": {
        "i2": "a clarity grade below I1",
        "i3": "a clarity grade below I1",
        "p2": "a clarity grade below I1 (piqué 2)",
        "p3": "a clarity grade below I1 (piqué 3)",
        "fl": "a clarity grade above IF (flawless)",
    },
}
SCALE_WORDS = {"cut": "Fair to Ideal", "color": "J to D", "clarity": "I1 to IF"}


def grade_key(column: str, text: str) -> str:
    """How a grade is compared: any letter case and spacing; for clarity, 'VS-1' and 'VS 1' are
    VS1; for colour, 'K (faint)' is K."""
    key = " ".join(text.split()).casefold()
    if column == "clarity":
        key = key.replace(" ", "").replace("-", "")
    if column == "color" and key[:1].isalpha() and key[1:2] in ("", " ", "("):
        key = key[:1]
    return key


def beyond_scale_reason(column: str, text: str) -> str | None:
    """Why a real grade beyond these appraisals is not priced, or None for any other text."""
    what = BEYOND_SCALE[column].get(grade_key(column, text))
    if what is None:
        return None
    return (
        f"'{text}' is {what}, beyond these appraisals ({SCALE_WORDS[column]}): the model cannot "
        "price it honestly; ask the expert"
    )
