"""The owner's three questions, answered in words: is the model good, is it getting better, what
changed. Plain data in, sentences out (the Home page and the monthly report lay them out).

One name per figure everywhere: *average error* is the mean absolute percentage error on the
reference appraisals (README's target: 7 % or better), *typical error* its median, *average error
in dollars* the mean absolute error. A change between two versions is *beyond noise* when it
exceeds twice the standard error of the stone-by-stone difference on the same appraisals, the
rule the gate uses (`learning.gate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from diamond_model.learning.gate import NOISE_FACTOR
from diamond_model.learning.registry import Registry
from diamond_model.learning.training import prices_at_their_months
from diamond_model.learning.versions import RegistryError
from diamond_model.pricing.market import MarketIndex, month_label
from diamond_model.storage.store import Store

TARGET_MAPE = 7.0  # % average error the model must meet (README, "The model, and why this one")
MONTH = timedelta(days=30)


@dataclass(frozen=True)
class Answer:
    """One question: a verdict of a few words, and the sentences behind it."""

    question: str
    verdict: str
    sentences: tuple[str, ...]
    good: bool | None = None  # True: good news, False: bad news, None: neither


@dataclass(frozen=True)
class Change:
    """The current version against an earlier one on the same reference appraisals."""

    version: int
    was: float  # its average error (%)
    now: float  # the current version's
    noise: float  # twice the standard error of the difference, in points

    @property
    def points(self) -> float:
        return self.now - self.was

    @property
    def beyond_noise(self) -> bool:
        return abs(self.points) > self.noise

    def words(self, since: str) -> str:
        if not self.beyond_noise:
            return (
                f"unchanged within noise {since} (v{self.version}: {self.was:.2f} %, now "
                f"{self.now:.2f} %; a difference under {self.noise:.2f} points is noise)"
            )
        better = self.points < 0
        return (
            f"{abs(self.points):.2f} points {'better' if better else 'worse'} {since} "
            f"(v{self.version}: {self.was:.2f} %, now {self.now:.2f} %), beyond noise"
        )


def change(version: int, prices: np.ndarray, before: np.ndarray, now: np.ndarray) -> Change:
    """Average error of `before` and `now` on the same appraisals, and the noise of the gap."""
    was = 100 * np.abs(before - prices) / prices
    is_ = 100 * np.abs(now - prices) / prices
    n = max(len(prices), 2)
    noise = NOISE_FACTOR * float(np.std(is_ - was, ddof=1) / np.sqrt(n)) if len(prices) > 1 else 0
    return Change(version, float(was.mean()), float(is_.mean()), noise)


def is_it_good(metrics: dict[str, float | None], typical_price: float) -> Answer:
    """The error in the trade's words, at this shop's typical stone, against the target."""
    mape = float(metrics.get("mape") or float("nan"))
    typical = float(metrics.get("median_ape") or float("nan"))
    dollars = typical / 100 * typical_price
    met = mape <= TARGET_MAPE
    return Answer(
        question="Is it good?",
        verdict="Yes: it meets the target" if met else "Not yet: above the target",
        sentences=(
            f"On a typical stone our price is within {typical:.1f} % of the expert's: about "
            f"${dollars:,.0f} on a ${typical_price:,.0f} stone, this shop's typical appraisal.",
            f"Average error {mape:.1f} %; the target is {TARGET_MAPE:g} % or better: "
            + ("met." if met else "not met."),
        ),
        good=met,
    )


def previous_champion(events: pd.DataFrame, current: int) -> int | None:
    """The version that served just before the current one (events: kind, version, at)."""
    versions = events["version"].tolist()
    while versions and versions[-1] == current:
        versions.pop()
    return int(versions[-1]) if versions else None


def champion_at(events: pd.DataFrame, moment: datetime) -> int | None:
    """The version serving at `moment`, or None before the first."""
    earlier = events.loc[pd.to_datetime(events["at"]) <= pd.Timestamp(moment)]
    return None if earlier.empty else int(earlier["version"].iloc[-1])


def is_it_getting_better(
    current: int,
    events: pd.DataFrame,
    previous: Change | None,
    month_ago: Change | None,
    first_served: datetime | None,
    same_as_month_ago: bool = False,
    learned: str = "",
) -> Answer:
    """Since the previous version and since a month ago, beyond noise or not; a rollback or a
    fallback said as what happened."""
    sentences = []
    last = events.iloc[-1] if len(events) else None
    if last is not None and last["kind"] == "rollback":
        note = str(last["note"] or "a rollback")
        sentences.append(
            f"v{current} serves again since {pd.Timestamp(last['at']):%d %B %Y}: "
            f"{note[:1].upper()}{note[1:]}."
        )
    elif last is not None and last["kind"] == "fallback":
        sentences.append(
            f"v{current} serves again since {pd.Timestamp(last['at']):%d %B %Y}, because "
            f"{last['note'] or 'a batch was withdrawn'}."
        )
    if previous is None:
        sentences.append(f"v{current} is the first model: nothing to compare it with yet.")
    else:
        text = previous.words("than the version before")
        sentences.append(f"v{current} is {text}.")
    if same_as_month_ago:
        sentences.append(f"v{current} was serving a month ago too.")
    elif month_ago is not None:
        sentences.append(f"It is {month_ago.words('than a month ago')}.")
    elif first_served is not None:
        sentences.append(
            f"No model served a month ago: the first began on {first_served:%d %B %Y}."
        )
    if learned:
        sentences.append(learned)
    if previous is None or not previous.beyond_noise:
        verdict, good = "Unchanged" if previous is not None else "Just started", None
    elif previous.points < 0:
        verdict, good = "Yes: better than the version before", True
    else:
        verdict, good = "No: worse than the version before", False
    if last is not None and last["kind"] in ("rollback", "fallback"):
        verdict = f"Back to v{current}" + (
            f": {'better' if previous.points < 0 else 'worse'} than the one it replaced"
            if previous is not None and previous.beyond_noise
            else ""
        )
    return Answer("Is it getting better?", verdict, tuple(sentences), good)


def learning_message(served: list[tuple[int, int, float]]) -> str:
    """What more appraisals did, from the versions that served, oldest first: (version,
    appraisals learned from, average error on the reference appraisals)."""
    if len(served) < 2:
        return (
            "The more appraisals it learns from, the smaller its errors: each batch the expert "
            "uploads should make it better (Performance, Analyst: the learning curve)."
        )
    (v0, n0, e0), (v1, n1, e1) = served[0], served[-1]
    if n1 > n0 and e1 < e0:
        return (
            f"More appraisals, smaller errors: v{v0} learned from {n0:,} ({e0:.2f} %), "
            f"v{v1} from {n1:,} ({e1:.2f} %)."
        )
    return (
        f"v{v0} learned from {n0:,} appraisals ({e0:.2f} %), v{v1} from {n1:,} ({e1:.2f} %): "
        "more of the same appraisals no longer lower the error by themselves."
    )


def what_changed(batches: pd.DataFrame, market: MarketIndex, in_use: int) -> Answer:
    """The latest batch and the market level, one sentence each."""
    sentences = []
    active = batches.loc[~batches["withdrawn"]] if len(batches) else batches
    if len(active):
        latest = active.sort_values("id").iloc[-1]
        live = latest["live"] if isinstance(latest["live"], dict) else {}
        read = (
            f", priced {live['level_pct']:+.1f} % against the model before it learned from them"
            if live
            else ""
        )
        when = pd.Timestamp(latest["uploaded_at"])
        sentences.append(
            f"Latest upload: batch {latest['id']} on {when:%d %B %Y}, "
            f"{int(latest['rows_accepted']):,} appraisals{read}; {in_use:,} appraisals in use."
        )
    withdrawn = batches.loc[batches["withdrawn"]] if len(batches) else batches
    if len(withdrawn):
        sentences.append(
            f"{len(withdrawn)} batch{'es are' if len(withdrawn) > 1 else ' is'} withdrawn "
            f"({', '.join(str(i) for i in withdrawn['id'])}): the model does not learn from it."
        )
    first, latest_month = month_label(int(market.months[0])), market.latest_label
    level = 100 * float(np.expm1(market.latest_level - market.level[0]))
    if len(market.months) > 1 and abs(level) >= 0.5:
        sentences.append(
            f"Prices are at the {_month_words(latest_month)} market level, {abs(level):.1f} % "
            f"{'above' if level > 0 else 'below'} {_month_words(first)}."
        )
    else:
        sentences.append(
            f"Prices are at the {_month_words(latest_month)} market level"
            + (f", as in {_month_words(first)}." if len(market.months) > 1 else ".")
        )
    uploads = f"{len(active)} batch{'es' if len(active) != 1 else ''} in use"
    return Answer("What changed?", uploads, tuple(sentences))


def _month_words(label: str) -> str:
    return f"{datetime.strptime(label, '%Y-%m'):%B %Y}"


@dataclass(frozen=True)
class ThreeAnswers:
    version: int
    good: Answer
    better: Answer
    changed: Answer
    mape: float


def figures_of(registry: Registry, version: int) -> dict[str, float | None]:
    """The figures a version is known by: its reference-set figures, else its held-out ones."""
    info = registry.info(version)
    if info is None:
        raise RegistryError(f"Version {version} is not stored.")
    return dict(info.reference_metrics or info.metrics)


def three_answers(
    registry: Registry, store: Store, level: float, now: datetime, version: int | None = None
) -> ThreeAnswers | None:
    """Is it good, is it getting better, what changed, as of `now` (the version serving then,
    or `version`; the batches uploaded by then). None before any model served."""
    events = registry.champion_events()
    events = events.loc[pd.to_datetime(events["at"]) <= pd.Timestamp(now)].reset_index(drop=True)
    version = version if version is not None else champion_at(events, now)
    if version is None:
        return None
    metrics = figures_of(registry, version)
    batches = store.batches()
    batches = batches.loc[pd.to_datetime(batches["uploaded_at"]) <= pd.Timestamp(now)]
    appraisals = store.appraisals()
    appraisals = appraisals.loc[appraisals["batch_id"].isin(batches["id"])]
    typical_price = float(appraisals["price"].median()) if len(appraisals) else 0.0
    reference = registry.reference_set()
    prices = reference["price"].to_numpy(dtype=float)
    current = (
        np.asarray(prices_at_their_months(registry.exam(version), reference, level))
        if len(prices)
        else None
    )

    def against(other: int | None) -> Change | None:
        if other is None or other == version or current is None:
            return None
        try:
            before = prices_at_their_months(registry.exam(other), reference, level)
        except RegistryError:  # a version that cannot be read is not compared with
            return None
        return change(other, prices, np.asarray(before), current)

    month_ago = champion_at(events, now - MONTH)
    first = pd.Timestamp(events["at"].iloc[0]).to_pydatetime() if len(events) else None
    infos = {v.version: v for v in registry.versions()}
    served = [
        (v, infos[v].train_rows, float(error))
        for v in dict.fromkeys(int(x) for x in events["version"])
        if v in infos and (error := (infos[v].reference_metrics or {}).get("mape")) is not None
    ]
    better = is_it_getting_better(
        version,
        events,
        against(previous_champion(events, version)),
        against(month_ago),
        first,
        same_as_month_ago=month_ago == version,
        learned=learning_message(served),
    )
    market = registry.load(version).market
    return ThreeAnswers(
        version=version,
        good=is_it_good(metrics, typical_price),
        better=better,
        changed=what_changed(batches, market, len(appraisals)),
        mape=float(metrics.get("mape") or 0.0),
    )


COVERAGE_FLOOR = 88.0  # % every group's range must cover (README, "Ranges honest for this stone")


def short_groups(tables: dict[str, pd.DataFrame]) -> list[str]:
    """The groups whose range covers fewer real prices than `COVERAGE_FLOOR`, in words
    (`tables`: a coverage table per grouping, with the group, `coverage` and `n` columns)."""
    said = []
    for what, table in tables.items():
        column = table.columns[0]
        for row in table.loc[table["coverage"] < COVERAGE_FLOOR].itertuples(index=False):
            group, covered, n = getattr(row, column), row.coverage, row.n
            said.append(f"{what} {group} ({covered:.1f} % of {n:,})")
    return said


def coverage_title(table: pd.DataFrame, group: str) -> str:
    """The coverage chart's conclusion for one grouping."""
    short = int((table["coverage"] < COVERAGE_FLOOR).sum())
    if not short:
        return f"Every {group} has {COVERAGE_FLOOR:g} % or more of real prices inside its range"
    return f"{short} {group}{'s' if short > 1 else ''} short of {COVERAGE_FLOOR:g} %, named above"


def ranges_sentence(tables: dict[str, pd.DataFrame], level: float) -> str:
    """One sentence: every group covered, or the groups that fall short named."""
    short = short_groups(tables)
    if not short:
        return (
            f"Every price band, size and cut has at least {COVERAGE_FLOOR:g} % of real prices "
            f"inside its {100 * level:.0f} % range."
        )
    return (
        f"The range falls short of {COVERAGE_FLOOR:g} % for {'; '.join(short)}: quotes there are "
        "less sure than they look, and the expert should check them."
    )


def history_events(events: pd.DataFrame) -> dict[int, str]:
    """What happened to each version that served, in a word or two: promoted, rolled back,
    stopped (it learned from a withdrawn batch), back (by a rollback or a fall-back)."""
    said: dict[int, list[str]] = {}
    serving: int | None = None
    for kind, version in events[["kind", "version"]].itertuples(index=False):
        version = int(version)
        if kind == "rollback" and serving is not None:
            said.setdefault(serving, []).append("rolled back")
            said.setdefault(version, []).append("back by rollback")
        elif kind == "fallback" and serving is not None:
            said.setdefault(serving, []).append("stopped: withdrawn batch")
            said.setdefault(version, []).append("back by fall-back")
        else:
            said.setdefault(version, []).append("promoted")
        serving = version
    return {version: ", ".join(dict.fromkeys(words)) for version, words in said.items()}


def events_in_words(events: pd.DataFrame, last: int = 5) -> list[str]:
    """The latest changes of the serving model, newest first, one line each."""
    words = {"promote": "promoted", "rollback": "served again (rollback)", "fallback": "served "
             "again (fall-back)"}  # fmt: skip
    lines = []
    recent = events.tail(last).iloc[::-1]
    for at, kind, version, note in zip(
        pd.to_datetime(recent["at"]), recent["kind"], recent["version"], recent["note"], strict=True
    ):
        what = words.get(str(kind), str(kind))
        lines.append(f"{at:%d %b %Y %H:%M}, v{version} {what}" + (f": {note}" if note else ""))
    return lines


def market_title(market: MarketIndex) -> str:
    """The market chart's conclusion."""
    if len(market.months) < 2:
        return f"One month of appraisals so far ({_month_words(market.latest_label)})"
    level = 100 * float(np.expm1(market.latest_level - market.level[0]))
    first = _month_words(month_label(int(market.months[0])))
    if abs(level) < 0.5:
        return f"Prices have not moved since {first}"
    return f"Prices are {abs(level):.1f} % {'above' if level > 0 else 'below'} {first}"
