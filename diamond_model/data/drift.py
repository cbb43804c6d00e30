"""How a batch differs from what the model learned on: a compact profile of the training data and
the population stability index (PSI) of each feature against it.

PSI sums (p_new - p_old) · ln(p_new / p_old) over bins: about 0 for the same distribution, above
0.1 a visible change, above 0.25 a large one (the credit-scoring rule of thumb it comes from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from diamond_model.data.schema import GRADES, LABELS, MEASUREMENTS

PROFILED: tuple[str, ...] = ("carat", *GRADES, *MEASUREMENTS, "price")
BINS = 10
FLOOR = 1e-4  # an empty bin counts as 0.01 %, so the logarithm stays finite
MODERATE, LARGE = 0.10, 0.25


@dataclass(frozen=True)
class FeatureProfile:
    """Bin edges (numbers) or categories (grades), the training shares, and the typical value."""

    edges: np.ndarray | None
    categories: tuple[str, ...] | None
    shares: np.ndarray
    typical: str

    def shares_of(self, values: pd.Series) -> np.ndarray:
        if self.categories is not None:
            counts = values.astype(str).value_counts().reindex(list(self.categories), fill_value=0)
            return counts.to_numpy(dtype=float) / max(len(values), 1)
        present = values.dropna().to_numpy(dtype=float)
        if self.edges is None:
            raise ValueError("a feature profile needs its categories or its bin edges")
        return np.histogram(present, self.edges)[0] / max(len(present), 1)


@dataclass(frozen=True)
class Profile:
    """The training data's distribution, feature by feature."""

    features: dict[str, FeatureProfile]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Profile:
        features = {}
        for name in PROFILED:
            values = frame[name]
            if name in GRADES:
                shares = values.astype(str).value_counts(normalize=True)
                shares = shares.reindex(list(GRADES[name]), fill_value=0.0)
                features[name] = FeatureProfile(
                    None, GRADES[name], shares.to_numpy(), str(values.mode().iloc[0])
                )
                continue
            present = values.dropna()
            if present.empty:
                continue
            edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1)))
            edges[0], edges[-1] = -np.inf, np.inf
            in_bins = np.histogram(present, edges)[0] / len(present)
            features[name] = FeatureProfile(edges, None, in_bins, f"{present.median():,.2f}")
        return cls(features)

    def compare(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Per feature: typical value in training and in the batch, PSI, and the shift in words."""
        rows = []
        for name, profile in self.features.items():
            if name not in batch or batch[name].isna().all():
                continue
            new = np.clip(profile.shares_of(batch[name]), FLOOR, None)
            old = np.clip(profile.shares, FLOOR, None)
            psi = float(np.sum((new - old) * np.log(new / old)))
            values = batch[name]
            typical = (
                str(values.astype(str).mode().iloc[0])
                if name in GRADES
                else f"{values.median():,.2f}"
            )
            rows.append(
                {
                    "feature": LABELS[name],
                    "typical in training": profile.typical,
                    "typical in batch": typical,
                    "PSI": round(psi, 3),
                    "shift": "large" if psi > LARGE else "moderate" if psi > MODERATE else "none",
                }
            )
        return pd.DataFrame(
            rows,
            columns=["feature", "typical in training", "typical in batch", "PSI", "shift"],
        )
