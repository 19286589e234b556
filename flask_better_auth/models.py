"""SQLAlchemy models with Better Auth's table and column names, so a JS deployment's DB opens as is.

Python attributes are snake_case; the columns keep Better Auth's camelCase names. The models live in
their own :data:`metadata` and work with any Flask-SQLAlchemy ``db`` (the app's or ours);
:func:`register_tables` also lists the tables in the app's ``db.metadata``, so the app's own
models can say ``db.ForeignKey("user.id")``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    event,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    deferred,
    mapped_column,
    undefer,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine, UserDefinedType

from .crypto import generate_id

#: The metadata holding ``user``, ``session``, ``account`` and ``verification``.
metadata = MetaData()


def utcnow() -> datetime:
    """The current time in UTC, at millisecond precision (what JavaScript dates can hold)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime) -> str:
    """JavaScript's ``Date.toISOString()``: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(value: Any) -> datetime:
    """Read a stored timestamp: an ISO-8601 string (``T`` or space), or epoch milliseconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value
    if isinstance(value, (int, float)):
        seconds = value / 1000 if abs(value) > 10_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    match = _ISO_RE.match(text)
    if not match:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return parse_datetime(float(text))
        raise ValueError(f"unreadable timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    parsed = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tz,
    )
    return parsed.astimezone(UTC)


class _SQLiteDate(UserDefinedType[str]):
    """SQLite's column type ``date`` as Better Auth declares it, holding ISO text as is."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "date"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps.

    PostgreSQL gets ``timestamptz``. SQLite gets Better Auth's own representation, the
    ``toISOString()`` text, so rows written by either server read back the same and compare
    correctly as strings.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteDate())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = parse_datetime(value)
        return iso(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else parse_datetime(value)


class Base(DeclarativeBase):
    """Declarative base of the Better Auth tables."""

    metadata = metadata


class User(Base):
    """A person who can sign in (Better Auth's ``user`` table)."""

    __tablename__ = "user"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    email: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    email_verified: Mapped[bool] = mapped_column(
        "emailVerified", Boolean, nullable=False, default=False
    )
    image: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow)

    # Flask-Login's user interface, so templates and code written for it work unchanged.

    @property
    def is_authenticated(self) -> bool:
        """Always ``True`` for a user (:class:`~flask_better_auth.AnonymousUser` says ``False``)."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Always ``False`` for a user."""
        return False

    @property
    def is_active(self) -> bool:
        """Whether the user may start a session.

        ``False`` only while ``BETTER_AUTH_REQUIRE_EMAIL_VERIFICATION`` is on and the email is
        not verified: Better Auth gives such a user no session, and neither does
        :func:`~flask_better_auth.login_user`.
        """
        if self.email_verified or not has_app_context():
            return True
        state = current_app.extensions.get("better_auth")
        return state is None or not state.settings.password.require_email_verification

    def get_id(self) -> str:
        """The user's id (Flask-Login's ``get_id``)."""
        return self.id

    def to_json(self) -> dict[str, Any]:
        """The user object of Better Auth's responses, in its key order (the fields of the
        app's plugins after ``updatedAt``, ``id`` last)."""
        data = {
            "name": self.name,
            "email": self.email,
            "emailVerified": bool(self.email_verified),
            "image": self.image,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }
        return _with_extra(self, data, "user")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        """A transient user (not in the database session) from :meth:`to_json`'s shape.

        For the users a cookie cache or the secondary storage holds.
        """
        user = cls(
            id=str(data["id"]),
            name=str(data["name"]),
            email=str(data["email"]),
            email_verified=bool(data.get("emailVerified", False)),
            image=data.get("image"),
            created_at=parse_datetime(data["createdAt"]),
            updated_at=parse_datetime(data["updatedAt"]),
        )
        _read_extra(user, data, "user")
        return user


class Session(Base):
    """A signed-in device (Better Auth's ``session`` table). ``token`` is the bearer secret."""

    __tablename__ = "session"
    __table_args__ = (Index("session_userId_idx", "userId"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow)
    ip_address: Mapped[str | None] = mapped_column("ipAddress", Text, nullable=True)
    user_agent: Mapped[str | None] = mapped_column("userAgent", Text, nullable=True)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    )

    def to_json(self) -> dict[str, Any]:
        """The session object of Better Auth's responses (token included), in its key order."""
        data = {
            "expiresAt": iso(self.expires_at),
            "token": self.token,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "ipAddress": self.ip_address,
            "userAgent": self.user_agent,
            "userId": self.user_id,
        }
        return _with_extra(self, data, "session")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        """A transient session (not in the database session) from :meth:`to_json`'s shape."""
        session = cls(
            id=str(data["id"]),
            token=str(data["token"]),
            user_id=str(data["userId"]),
            expires_at=parse_datetime(data["expiresAt"]),
            created_at=parse_datetime(data["createdAt"]),
            updated_at=parse_datetime(data["updatedAt"]),
            ip_address=data.get("ipAddress"),
            user_agent=data.get("userAgent"),
        )
        _read_extra(session, data, "session")
        return session


class Account(Base):
    """A way to sign in: ``providerId="credential"`` holds the password hash."""

    __tablename__ = "account"
    __table_args__ = (Index("account_userId_idx", "userId"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    account_id: Mapped[str] = mapped_column("accountId", Text, nullable=False)
    provider_id: Mapped[str] = mapped_column("providerId", Text, nullable=False)
    user_id: Mapped[str] = mapped_column(
        "userId", Text, ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    )
    access_token: Mapped[str | None] = mapped_column("accessToken", Text, nullable=True)
    refresh_token: Mapped[str | None] = mapped_column("refreshToken", Text, nullable=True)
    id_token: Mapped[str | None] = mapped_column("idToken", Text, nullable=True)
    access_token_expires_at: Mapped[datetime | None] = mapped_column(
        "accessTokenExpiresAt", UTCDateTime, nullable=True
    )
    refresh_token_expires_at: Mapped[datetime | None] = mapped_column(
        "refreshTokenExpiresAt", UTCDateTime, nullable=True
    )
    scope: Mapped[str | None] = mapped_column(Text, nullable=True)
    password: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow)


class Verification(Base):
    """A short-lived value (reset tokens, OAuth state…) looked up by ``identifier``."""

    __tablename__ = "verification"
    __table_args__ = (Index("verification_identifier_idx", "identifier"),)

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    identifier: Mapped[str] = mapped_column(Text, nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow)


#: The columns of each core table as Better Auth's core declares them, before any plugin adds
#: its own (what adopting an existing database checks).
CORE_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(column.name for column in table.columns) for name, table in metadata.tables.items()
}

_MODELS: dict[str, type[Base]] = {"user": User, "session": Session, "account": Account}

#: The ``Column.info`` flag of the columns plugins add.
PLUGIN_FIELD = "better_auth_plugin_field"

#: The tables some app of the process added plugin columns to: the others pay for nothing.
_EXTENDED: set[str] = set()


def extra_fields(kind: str) -> tuple[Any, ...]:
    """The current app's plugin fields of ``"user"``, ``"session"`` or ``"account"`` (none
    outside an app, or in an app without plugin fields)."""
    if kind not in _EXTENDED or not has_app_context():
        return ()
    state = current_app.extensions.get("better_auth")
    plugins = getattr(state, "plugins", None)
    return tuple(getattr(plugins, f"{kind}_fields", ()))


def _json_value(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _with_extra(row: Any, data: dict[str, Any], kind: str) -> dict[str, Any]:
    # Better Auth's order: the core fields, the plugins' in plugin order, then the id.
    for extra in extra_fields(kind):
        data[extra.name] = _json_value(getattr(row, extra.attribute, None))
    data["id"] = row.id
    return data


def _read_extra(row: Any, data: dict[str, Any], kind: str) -> None:
    for extra in extra_fields(kind):
        value = data.get(extra.name, extra.default)
        if value is not None and isinstance(extra.type, UTCDateTime):
            value = parse_datetime(value)
        setattr(row, extra.attribute, value)


def add_fields(kind: str, fields: Any) -> None:
    """Add plugin columns to the ``user``, ``session`` or ``account`` table and model.

    The tables are shared by every app of the process, so a column is added once, when the
    first app enabling it starts; it is *deferred*, so apps without the plugin never select it
    (their database may lack it) and never insert it (an unset attribute is left out). Only
    the apps whose plugins declare a field serialise it (:func:`extra_fields`).

    :raises ValueError: the column exists with another type (two plugins disagree).
    """
    model = _MODELS[kind]
    table = metadata.tables[kind]
    for extra in fields:
        present = table.c.get(extra.name)
        if present is not None:
            if type(present.type) is not type(extra.type):
                raise ValueError(f"{kind}.{extra.name} is already a {present.type!r} column")
            continue
        # FetchedValue: no DDL default, but an unset value is left out of INSERTs (else the
        # ORM writes NULL into a column the database of an app without the plugin lacks).
        column = Column(
            extra.name,
            extra.type,
            nullable=extra.nullable,
            server_default=FetchedValue(),
            info={PLUGIN_FIELD: True},
        )
        table.append_column(column)
        _EXTENDED.add(kind)
        model.__mapper__.add_property(extra.attribute, deferred(column))
        # Nor may an INSERT read it back (RETURNING): the value stays expired until used.
        model.__mapper__.eager_defaults = False


@compiles(CreateColumn)
def _create_column(element: CreateColumn, compiler: Any, **kw: Any) -> Any:
    # CREATE TABLE (create_all) makes a plugin's column only for an app that enables the
    # plugin: the shared table lists every app's; None leaves the column out.
    column = element.element
    plugin = column.info.get(PLUGIN_FIELD) and isinstance(column.table, Table)
    if plugin and column.name not in {extra.name for extra in extra_fields(column.table.name)}:
        return None
    return compiler.visit_create_column(element, **kw)


def _set_defaults(row: Any, args: Any, kwargs: Any) -> None:
    # A new row of an app whose plugins add fields starts with their defaults.
    kind = getattr(row, "__tablename__", "")
    for extra in extra_fields(kind):
        if extra.attribute not in kwargs and extra.default is not None:
            setattr(row, extra.attribute, extra.default)


for _model in _MODELS.values():
    event.listen(_model, "init", _set_defaults)


@event.listens_for(OrmSession, "do_orm_execute")
def _load_plugin_fields(execute_state: ORMExecuteState) -> None:
    # The deferred plugin columns load with their row, in the same query, in the apps that
    # enable them (a lazy load would cost one more query per row).
    if not _EXTENDED or not execute_state.is_select:
        return
    options = [
        undefer(getattr(model, extra.attribute))
        for kind, model in _MODELS.items()
        if any(mapper.class_ is model for mapper in execute_state.all_mappers)
        for extra in extra_fields(kind)
    ]
    if options:
        execute_state.statement = execute_state.statement.options(*options)


def register_tables(target: MetaData) -> None:
    """List the ``user``, ``session``, ``account`` and ``verification`` tables in ``target`` too.

    ``target`` is the app's ``db.metadata``. A string foreign key such as
    ``db.ForeignKey("user.id")`` is looked up in its own table's metadata, so without this it
    cannot find our tables. The very same :class:`~sqlalchemy.schema.Table` objects are listed
    (not copies): a foreign key to them is a foreign key to the tables our models map, so
    ``relationship(User)`` and ``join(User)`` infer their join. ``db.create_all()`` and
    ``db.drop_all()`` then include these tables.

    :raises ValueError: ``target`` already holds another table of one of these names.
    """
    for name, table in metadata.tables.items():
        present = target.tables.get(name)
        if present is table:
            continue
        if present is not None:
            raise ValueError(
                f"the app's db.metadata already has a table named {name!r},"
                " the name of Better Auth's own table"
            )
        # SQLAlchemy has no public way to list a table in a second MetaData; this is what
        # Table() itself calls. A copy (Table.to_metadata) would be another table to the ORM.
        target._add_table(table.name, table.schema, table)
    # A column declared earlier as db.Column(db.ForeignKey("user.id")), without a type, takes
    # the type of the column it points at once that can be found (SQLAlchemy does this only
    # for tables that arrive the ordinary way): now.
    for table in target.tables.values():
        for fk in table.foreign_keys:
            ours = fk.target_fullname.rpartition(".")[0] in metadata.tables
            if ours and isinstance(fk.parent.type, NullType):
                fk.parent.type = fk.column.type


#: The metadata of the optional ``rateLimit`` table, which (as in Better Auth) exists only where
#: ``BETTER_AUTH_RATE_LIMIT_STORAGE = "database"``.
rate_limit_metadata = MetaData()


class RateLimitBase(DeclarativeBase):
    """Declarative base of the ``rateLimit`` table."""

    metadata = rate_limit_metadata


class RateLimit(RateLimitBase):
    """A rate-limit counter (Better Auth's ``rateLimit`` table): ``key`` is ``"<ip>|<path>"``."""

    __tablename__ = "rateLimit"

    id: Mapped[str] = mapped_column(Text, primary_key=True, default=generate_id)
    key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    last_request: Mapped[int] = mapped_column("lastRequest", BigInteger, nullable=False)


__all__ = [
    "CORE_COLUMNS",
    "Account",
    "Base",
    "RateLimit",
    "Session",
    "User",
    "Verification",
    "add_fields",
    "extra_fields",
    "metadata",
    "rate_limit_metadata",
    "register_tables",
]
