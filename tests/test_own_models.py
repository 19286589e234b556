"""The app's own models can point at ours: ``db.ForeignKey("user.id")`` with the app's ``db``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import BASE, SECRET
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, Text, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from flask_better_auth import BetterAuth, ConfigError, User
from flask_better_auth.migrations import MODEL_TABLES, include_name, include_object
from flask_better_auth.models import metadata
from flask_better_auth.testing import create_user


def user_app(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        BETTER_AUTH_SECRET=SECRET,
        BETTER_AUTH_BASE_URL=BASE,
        BETTER_AUTH_SCRYPT_N=1024,
    )
    return app


@pytest.fixture
def blog(database_url: str) -> Iterator[tuple[Flask, SQLAlchemy, Any, Any]]:
    """An app with its own db and two models pointing at ``user``: one declared before
    ``BetterAuth`` is set up (the usual factory order), one after."""
    db = SQLAlchemy()

    class Post(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "post"
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.Text, nullable=False)
        # No type given: it comes from the referenced column, as for any ForeignKey.
        user_id = db.Column(db.ForeignKey("user.id", ondelete="CASCADE"), nullable=False)
        author = db.relationship(User)  # the join is inferred from the foreign key

    app = user_app(database_url)
    db.init_app(app)
    BetterAuth(app, db=db)

    class Comment(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "comment"
        id: Mapped[int] = mapped_column(primary_key=True)
        body: Mapped[str] = mapped_column(Text)
        user_id: Mapped[str] = mapped_column(ForeignKey(User.id))  # the column form works too
        post_id: Mapped[int] = mapped_column(ForeignKey("post.id"))

    with app.app_context():
        db.drop_all()
        db.create_all()  # the app's tables and ours, in foreign-key order
    yield app, db, Post, Comment
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


def test_foreign_keys_to_user_resolve_create_and_join(blog: Any) -> None:
    app, db, Post, Comment = blog
    ann = create_user(app, "ann@example.com", name="Ann")
    with app.app_context():
        names = set(inspect(db.engine).get_table_names())
        assert {"post", "comment", *metadata.tables} <= names
        (fk,) = inspect(db.engine).get_foreign_keys("post")
        assert (fk["referred_table"], fk["referred_columns"]) == ("user", ["id"])
        assert isinstance(Post.__table__.c.user_id.type, Text)

        post = Post(title="Hello", user_id=ann.id)
        db.session.add(post)
        db.session.flush()
        db.session.add(Comment(body="First", user_id=ann.id, post_id=post.id))
        db.session.commit()

        (title, email), *rest = db.session.execute(
            select(Post.title, User.email).join(User)  # ON inferred from the foreign key
        ).all()
        assert (title, email, rest) == ("Hello", "ann@example.com", [])
        assert db.session.execute(select(Post)).scalar_one().author.name == "Ann"
        joined = select(Comment.body, User.name).join(User, User.id == Comment.user_id)
        assert db.session.execute(joined).all() == [("First", "Ann")]


def test_the_database_enforces_the_foreign_key(blog: Any) -> None:
    app, db, Post, _ = blog
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite checks foreign keys only with PRAGMA foreign_keys=ON")
    with app.app_context():
        db.session.add(Post(title="Orphan", user_id="no-such-user"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_the_app_metadata_holds_our_very_tables(blog: Any) -> None:
    _, db, _, _ = blog
    for name, table in metadata.tables.items():
        assert db.metadata.tables[name] is table  # not copies: the ORM sees one table


def test_one_db_for_several_apps(database_url: str) -> None:
    db = SQLAlchemy()
    auth = BetterAuth()
    for _ in range(2):
        app = user_app(database_url)
        db.init_app(app)
        auth.init_app(app)  # listing the tables again is harmless
        with app.app_context():
            db.engine.dispose()
    assert set(MODEL_TABLES) - {"rateLimit"} <= set(db.metadata.tables)


def test_an_app_table_named_user_is_a_clear_error(database_url: str) -> None:
    db = SQLAlchemy()

    class Person(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)

    app = user_app(database_url)
    db.init_app(app)
    with pytest.raises(
        ConfigError,
        match=r"db\.metadata already has a table named 'user', the name of Better Auth's own"
        r" table: rename",
    ):
        BetterAuth(app, db=db)


def test_include_object_keeps_an_apps_autogenerate_off_our_tables(blog: Any) -> None:
    """With our tables in the app's metadata, Flask-Migrate needs include_object too."""
    app, db, _, _ = blog
    with app.app_context():
        db.drop_all()
        with db.engine.connect() as connection:
            by_name = compare_metadata(
                MigrationContext.configure(connection, opts={"include_name": include_name}),
                db.metadata,
            )
            by_object = compare_metadata(
                MigrationContext.configure(connection, opts={"include_object": include_object}),
                db.metadata,
            )
        db.create_all()
        metadata.create_all(db.engine)
        with db.engine.connect() as connection:
            up_to_date = compare_metadata(
                MigrationContext.configure(connection, opts={"include_object": include_object}),
                db.metadata,
            )
    added = {diff[1].name for diff in by_name if diff[0] == "add_table"}
    assert set(metadata.tables) <= added  # include_name alone would create our tables
    assert {diff[1].name for diff in by_object if diff[0] == "add_table"} == {"post", "comment"}
    assert [diff for diff in by_object if diff[0] != "add_table"] == []
    assert up_to_date == []
