"""People who sign in to the dashboard's expert mode, each with a name, a role and a personal code.

Codes are stored as scrypt hashes (memory-hard, about 50 ms to check), never as themselves; the
first person is created by `init` with the installation's access code, the others with
`people add`. Every change made in expert mode is recorded under the person's name (`audit`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select

from diamond_model.storage.store import Store
from diamond_model.storage.tables import Person, utcnow

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_CODE = 8


class Role(StrEnum):
    EXPERT = "expert"
    OWNER = "owner"


class PersonError(ValueError):
    """A person who cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class SignedIn:
    name: str
    role: Role


def hash_code(code: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(code.encode(), salt=salt, dklen=32, **SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def code_matches(code: str, stored: str) -> bool:
    try:
        kind, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(code.encode(), salt=base64.b64decode(salt), dklen=32, **SCRYPT)
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and hmac.compare_digest(found, expected)


@functools.cache
def _stand_in() -> str:
    """A hash checked when the name is unknown, so an unknown name takes as long as a known one."""
    return hash_code(secrets.token_urlsafe(12))


class People:
    """The people table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def count(self) -> int:
        with self.store.session() as session:
            return int(
                session.scalar(select(func.count(Person.id)).where(Person.disabled_at.is_(None)))
                or 0
            )

    def add(self, name: str, role: Role, code: str | None = None, shortest: int = MIN_CODE) -> str:
        """Create a person; returns the code (generated when not given: shown once)."""
        name = name.strip()
        if not name or len(name) > 80:
            raise PersonError("A name of 1 to 80 characters is needed.")
        code = code if code is not None else secrets.token_urlsafe(12)
        if len(code) < shortest:
            raise PersonError(f"A personal code needs at least {MIN_CODE} characters.")
        with self.store.session() as session, session.begin():
            if session.scalar(select(Person.id).where(Person.name == name)) is not None:
                raise PersonError(f"There is already someone called {name!r}.")
            session.add(
                Person(name=name, role=role, code_hash=hash_code(code), created_at=utcnow())
            )
        return code

    def sign_in(self, name: str, code: str) -> SignedIn | None:
        """The person, when the name and code match an active person; None otherwise (the
        same time is spent whether or not the name exists)."""
        with self.store.session() as session:
            person = session.scalar(
                select(Person).where(Person.name == name.strip(), Person.disabled_at.is_(None))
            )
        stored = person.code_hash if person is not None else _stand_in()
        if not code_matches(code.strip(), stored) or person is None:
            return None
        return SignedIn(person.name, Role(person.role))

    def disable(self, name: str) -> None:
        with self.store.session() as session, session.begin():
            person = session.scalar(select(Person).where(Person.name == name))
            if person is None:
                raise PersonError(f"There is nobody called {name!r}; `people list` shows them.")
            person.disabled_at = utcnow()

    def all(self) -> list[Person]:
        with self.store.session() as session:
            return list(session.scalars(select(Person).order_by(Person.id)))
