"""The settings reader: declared keys, typed reads, clear errors, and a plugin's keys known."""

from __future__ import annotations

import ast
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flask_better_auth import ConfigError
from flask_better_auth.config import ConfigReader, Keys, warn_unknown_keys
from flask_better_auth.settings import CORE_KEYS, DEFAULTS, AuthSettings

PACKAGE = Path(__file__).resolve().parents[1] / "flask_better_auth"
SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

KEYS = Keys(
    {
        "FLAG": True,
        "MAYBE": None,
        "COUNT": 3,
        "WAIT": timedelta(seconds=5),
        "ITEMS": ["a"],
        "NAME": "default",
        "NOTHING": None,
    },
    owner="test",
)
#: What a plugin would declare: its keys, with defaults, under its own prefix.
PLUGIN_KEYS = Keys({"TEST_PLUGIN_GREETING": "hello", "TEST_PLUGIN_LIMIT": 5}, owner="test-plugin")


def reader(**values: Any) -> ConfigReader:
    return ConfigReader({f"BETTER_AUTH_{k}": v for k, v in values.items()}, KEYS)


# -- reads -------------------------------------------------------------------------------------


def test_absent_keys_read_their_declared_default() -> None:
    cfg = reader()
    assert cfg.bool("FLAG") is True
    assert cfg.optional_bool("MAYBE") is None
    assert cfg.int("COUNT") == 3
    assert cfg.duration("WAIT") == timedelta(seconds=5)
    assert cfg.list("ITEMS") == ["a"]
    assert cfg.str("NAME") == "default"
    assert cfg.optional_str("NOTHING") is None
    assert cfg.raw("COUNT") == 3
    assert cfg.key("COUNT") == "BETTER_AUTH_COUNT"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(False, False), ("true", True), (" Off ", False), ("1", True), (0, False), ("", False)],
)
def test_booleans_from_python_and_from_the_environment(value: Any, expected: bool) -> None:
    assert reader(FLAG=value).bool("FLAG") is expected
    assert reader(MAYBE=value).optional_bool("MAYBE") is expected


def test_numbers_durations_and_lists_from_their_usual_forms() -> None:
    assert reader(COUNT="12").int("COUNT") == 12
    assert reader(WAIT=90).duration("WAIT") == timedelta(seconds=90)
    assert reader(WAIT="1.5").duration("WAIT") == timedelta(seconds=1.5)
    assert reader(WAIT=timedelta(hours=1)).duration("WAIT") == timedelta(hours=1)
    assert reader(ITEMS="x, y,,z").list("ITEMS") == ["x", "y", "z"]
    assert reader(ITEMS='["x", "y"]').list("ITEMS") == ["x", "y"]
    assert reader(ITEMS=("x",)).list("ITEMS") == ["x"]
    assert reader(ITEMS=None).list("ITEMS") == []


def test_strings_empty_or_none_fall_back_to_the_default() -> None:
    assert reader(NAME="").str("NAME") == "default"
    assert reader(NAME=None).str("NAME") == "default"
    assert reader(NAME=42).str("NAME") == "42"  # from the environment, JSON digits
    assert reader(NOTHING=None).str("NOTHING") == ""
    assert reader(NOTHING="").optional_str("NOTHING") is None
    assert reader(NOTHING="x").optional_str("NOTHING") == "x"
    assert reader(MAYBE=None).raw("MAYBE") is None  # a configured None stays None


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "name", "value", "message"),
    [
        ("bool", "FLAG", "maybe", "BETTER_AUTH_FLAG must be true or false, not 'maybe'."),
        ("bool", "FLAG", None, "BETTER_AUTH_FLAG must be true or false, not None."),
        ("optional_bool", "MAYBE", 2, "BETTER_AUTH_MAYBE must be true or false, not 2."),
        ("int", "COUNT", "3.5", "BETTER_AUTH_COUNT must be an integer, not '3.5'."),
        ("int", "COUNT", True, "BETTER_AUTH_COUNT must be an integer, not True."),
        (
            "duration",
            "WAIT",
            "soon",
            "BETTER_AUTH_WAIT must be a timedelta or a number of seconds, not 'soon'.",
        ),
        ("duration", "WAIT", -1, "BETTER_AUTH_WAIT must not be negative (-1)."),
        ("list", "ITEMS", "[1", "BETTER_AUTH_ITEMS is not a valid JSON list: '[1'."),
        ("list", "ITEMS", [1], "BETTER_AUTH_ITEMS must be a list of strings, not [1]."),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_key(
    method: str, name: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        getattr(reader(**{name: value}), method)(name)
    assert str(raised.value) == message


def test_errors_name_the_readers_own_prefix() -> None:
    cfg = ConfigReader({"ACME_COUNT": "x"}, KEYS, prefix="ACME_")
    with pytest.raises(ConfigError, match=r"^ACME_COUNT must be an integer, not 'x'\.$"):
        cfg.int("COUNT")


def test_reading_an_undeclared_key_is_a_programming_error() -> None:
    with pytest.raises(KeyError, match="BETTER_AUTH_UNDECLARED is not a declared setting"):
        reader(UNDECLARED=1).raw("UNDECLARED")


# -- the registry ------------------------------------------------------------------------------


def test_registries_join_and_a_key_declared_twice_names_both_owners() -> None:
    joined = KEYS | PLUGIN_KEYS
    assert joined["TEST_PLUGIN_GREETING"] == "hello" and joined["COUNT"] == 3
    assert joined.owner("TEST_PLUGIN_LIMIT") == "test-plugin" and joined.owner("FLAG") == "test"
    assert len(joined) == len(KEYS) + len(PLUGIN_KEYS)
    with pytest.raises(ConfigError, match=r"^BETTER_AUTH_COUNT is declared by both test and rival"):
        KEYS | Keys({"COUNT": 4}, owner="rival")
    with pytest.raises(
        ConfigError, match="COOKIE_SECURE is declared by both cookies and test-plugin"
    ):
        CORE_KEYS | Keys({"COOKIE_SECURE": False}, owner="test-plugin")


@pytest.mark.parametrize("name", ["BETTER_AUTH_X", "lower", "1X", "A-B", ""])
def test_a_key_is_declared_without_the_prefix_in_upper_case(name: str) -> None:
    with pytest.raises(ValueError, match="write the key without BETTER_AUTH_"):
        Keys({name: 1}, owner="test-plugin")


def test_defaults_are_a_read_only_view_of_every_declared_key() -> None:
    assert dict(DEFAULTS) == {f"BETTER_AUTH_{k}": v for k, v in CORE_KEYS.items()}
    assert DEFAULTS["BETTER_AUTH_COOKIE_SECURE"] is True
    assert DEFAULTS["BETTER_AUTH_COOKIE_NAMING"] == "seed"
    assert DEFAULTS["BETTER_AUTH_SESSION_EXPIRES_IN"] == timedelta(days=7)
    with pytest.raises(TypeError):
        DEFAULTS["BETTER_AUTH_PLUGIN_SETTING"] = 1  # type: ignore[index]
    # Every group declares its own keys, and owns them.
    assert CORE_KEYS.owner("COOKIE_CACHE_ENABLED") == "cookie_cache"
    assert CORE_KEYS.owner("RATE_LIMIT_MAX") == "ratelimit"
    assert CORE_KEYS.owner("SMTP_HOST") == "email"
    assert CORE_KEYS.owner("SECRET") == "core"


# -- unknown keys, a plugin's included -----------------------------------------------------------


def test_a_plugins_declared_keys_are_known_and_its_typos_are_caught(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {
        "BETTER_AUTH_SECRET": SECRET,
        "BETTER_AUTH_TEST_PLUGIN_GREETING": "hi",
        "BETTER_AUTH_TEST_PLUGIN_LIMT": 9,
        "BETTER_AUTH_COOKIES_SECURE": False,
        "OTHER_KEY": 1,
    }
    keys = CORE_KEYS | PLUGIN_KEYS
    with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
        settings = AuthSettings.from_config(config, testing=True, keys=keys)
    assert settings.cookies.secure is True  # the misspelt key was ignored
    assert sorted(record.getMessage() for record in caplog.records) == [
        "unknown setting BETTER_AUTH_COOKIES_SECURE, ignored:"
        " did you mean BETTER_AUTH_COOKIE_SECURE?",
        "unknown setting BETTER_AUTH_TEST_PLUGIN_LIMT, ignored:"
        " did you mean BETTER_AUTH_TEST_PLUGIN_LIMIT?",
    ]
    # The plugin reads its group through the same reader, defaults from its declaration.
    cfg = ConfigReader(config, keys)
    assert (cfg.str("TEST_PLUGIN_GREETING"), cfg.int("TEST_PLUGIN_LIMIT")) == ("hi", 5)


def test_without_the_plugin_its_keys_are_unknown(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_better_auth"):
        warn_unknown_keys({"BETTER_AUTH_TEST_PLUGIN_GREETING": "hi"}, CORE_KEYS)
        warn_unknown_keys({"BETTER_AUTH_TEST_PLUGIN_GREETING": "hi"}, CORE_KEYS | PLUGIN_KEYS)
    assert [record.getMessage() for record in caplog.records] == [
        "unknown setting BETTER_AUTH_TEST_PLUGIN_GREETING, ignored"
    ]


# -- the direction of imports ------------------------------------------------------------------


def runtime_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks aside)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if node.module:
                found.add(node.module.split(".")[0])
            found.update(alias.name for alias in node.names if not node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def package_imports(path: Path) -> set[str]:
    """The package modules ``path`` imports at run time, as dotted names below the package
    (``from ..config import x`` in ``settings/email.py`` is ``config``; ``from . import email``
    in ``settings/__init__.py`` is ``settings.email``)."""
    here = path.relative_to(PACKAGE).with_suffix("").parts
    package = here[:-1]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join((*base, node.module)))
            else:
                found.update(".".join((*base, alias.name)) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


#: What the settings are read with: leaf modules that import nothing above them.
SETTINGS_LEAVES = {"config", "cookies", "crypto", "errors", "ip", "origin", "ratelimit_rules"}


def test_features_import_settings_and_settings_import_no_feature() -> None:
    settings_files = sorted((PACKAGE / "settings").glob("*.py"))
    assert settings_files
    for path in settings_files:
        for module in package_imports(path):
            top = module.split(".")[0]
            assert top == "settings" or top in SETTINGS_LEAVES, (path.name, module)
    assert package_imports(PACKAGE / "config.py") == set()
    for leaf in sorted(SETTINGS_LEAVES):
        imported = {m.split(".")[0] for m in package_imports(PACKAGE / f"{leaf}.py")}
        assert imported <= SETTINGS_LEAVES, (leaf, imported)
    # Each feature's settings group lives under settings/ and the feature imports it from there.
    for feature in ("email", "cookie_cache", "secondary_storage"):
        assert (PACKAGE / "settings" / f"{feature}.py").exists(), feature
    assert "settings.email" in package_imports(PACKAGE / "email.py")
    assert "settings.secondary_storage" in package_imports(PACKAGE / "secondary_storage.py")


def sibling_imports(path: Path) -> set[str]:
    """The modules of its own package ``path`` imports (``from .x import``, ``from . import x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add(node.module or ",".join(alias.name for alias in node.names))
    return found


def test_routes_import_no_route_and_nothing_below_imports_routes_or_plugins() -> None:
    # A route module uses the endpoint contract and domain modules, never another route.
    for path in sorted((PACKAGE / "routes").glob("*.py")):
        if path.name != "__init__.py":
            assert sibling_imports(path) == set(), path.name
    # The contract, the domain helpers and the CLI sit below the routes and the plugins.
    below = ("endpoints", "blueprint", "passwords", "email_links", "cli", "login", "models")
    for name in below:
        assert runtime_imports(PACKAGE / f"{name}.py").isdisjoint(
            {"routes", "plugins", "extension"}
        ), name
    # The plugin seam knows the contract, not the core's routes nor the extension.
    plugins = runtime_imports(PACKAGE / "plugins" / "__init__.py")
    assert plugins.isdisjoint({"routes", "extension", "state", "context"}), plugins
