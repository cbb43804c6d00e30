"""One settings object for the whole product, read from `DIAMOND_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the engine, the dashboard and the API, with its documented default."""

    model_config = SettingsConfigDict(env_prefix="DIAMOND_", extra="ignore")

    instance_dir: Path = Field(
        Path("instance"),
        description="Folder for runtime state (SQLite database, access code). Git-ignored.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL. Default: SQLite `diamonds.sqlite3` in the instance folder. "
        "PostgreSQL: postgresql+psycopg://user:password@host/dbname",
    )
    interval_level: float = Field(
        0.90, gt=0.5, lt=1.0, description="Share of real prices the quoted range should contain."
    )
    promotion_tolerance: float = Field(
        0.02,
        ge=0.0,
        le=0.5,
        description="A candidate is promoted when its held-out MAPE and MAE are at most this "
        "fraction worse than the champion's (0.02 = 2% relative).",
    )
    holdout_fraction: float = Field(
        0.2, gt=0.05, lt=0.5, description="Share of appraisals kept out of training for evaluation."
    )
    auto_retrain: bool = Field(True, description="Retrain automatically after each ingested batch.")
    lease_seconds: float = Field(
        45.0,
        ge=2.0,
        le=600.0,
        description="A retrain renews its lease four times in this period; a crashed one stops "
        "blocking others after it.",
    )
    size_search_seconds: float = Field(
        90.0,
        ge=0.0,
        description="Time a retrain may spend trying larger model sizes by cross-validation.",
    )
    max_upload_bytes: int = Field(20_000_000, ge=1_000, description="Largest accepted CSV upload.")
    max_upload_rows: int = Field(200_000, ge=1, description="Most data rows in one uploaded CSV.")
    max_batch_stones: int = Field(10_000, ge=1, description="Most stones priced in one API call.")
    expose_worker: bool = Field(
        False,
        description="Add `X-Worker: <pid>` to every API answer. For tests and local debugging "
        "only: in production it tells a stranger which process to aim at.",
    )
    access_code: SecretStr | None = Field(
        None,
        description="The expert's access code for the dashboard (not an API key). Generated at "
        "`init` and stored in the instance folder when not set.",
    )
    api_url: str = Field(
        "http://localhost:8000",
        max_length=200,
        description="Where clients reach the API: printed in the first `curl` the Business page "
        "hands a new key.",
    )
    price_per_1000_stones: float = Field(
        20.0,
        ge=0,
        description="Dollars charged per 1,000 stones a client prices through the API, unless "
        "its key has a price of its own (the Business page, `keys change`).",
    )
    api_open_reads: bool = Field(
        False,
        description="Let calls without a key price stones and read the model and market index "
        "(a shop's own counter on a private network). Off by default: every /v1 route needs a "
        "client key. Stored appraisals and batches always need one (`data:read`).",
    )
    trusted_proxies: str = Field(
        "",
        description="Addresses or CIDR ranges (comma-separated) of the reverse proxies whose "
        "X-Forwarded-For is believed. Empty (the default): the connection's own address is the "
        "client's, whatever headers say.",
    )
    record_quotes: bool = Field(
        True, description="Keep every API quote (inputs and answer) for reproduction and audit."
    )
    quote_retention_days: int = Field(
        90, ge=1, le=3650, description="How long quote records are kept for reproduction."
    )
    shop_name: str = Field(
        "Don Francesco Jewellers", max_length=80, description="Printed on customer quotes."
    )
    shop_address: str = Field(
        "Via Roma 1, 00100 Roma, Italia",
        max_length=160,
        description="The shop's address on customer quotes (one line; commas split it).",
    )
    shop_phone: str = Field(
        "+39 06 000 0000", max_length=40, description="The shop's phone on customer quotes."
    )
    shop_vat: str = Field(
        "", max_length=40, description="The shop's VAT number on customer quotes (P.IVA)."
    )
    quote_valid_days: int = Field(
        30, ge=1, le=365, description="How many days a customer quote is valid for."
    )

    @field_validator("instance_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite default."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.instance_dir / 'diamonds.sqlite3'}"

    @property
    def access_code_file(self) -> Path:
        return self.instance_dir / "access_code"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
