from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="flask-better-auth",
    version="0.1.0",
    description="Better Auth for Flask: Better Auth 1.7's HTTP API, sessions and cookies on Flask.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["flask_better_auth", "flask_better_auth.*"]),
    package_data={
        "flask_better_auth": [
            "py.typed",
            "templates/better_auth/email/*",
            "migrations/script.py.mako",
        ]
    },
    include_package_data=True,
    python_requires=">=3.11",
    # `flask --help` lists the group even when the app fails to load (a ConfigError).
    entry_points={"flask.commands": ["better-auth = flask_better_auth.cli:cli"]},
    install_requires=[
        "flask>=3.0",
        "flask-sqlalchemy>=3.1",
        "flask-cors>=4.0",
        "itsdangerous>=2.1",
        "joserfc>=1.0",
        "httpx>=0.27",  # the OAuth back channel (token, userinfo, discovery, JWKS)
        "pynacl>=1.5",  # libsodium XChaCha20-Poly1305: Better Auth's encrypted OAuth tokens
        "cryptography>=42",  # HKDF of Better Auth's purpose keys (joserfc needs it too)
        "alembic>=1.13",
        "ada-url>=1.15",  # the WHATWG URL parser: URLs checked as browsers read them
    ],
    extras_require={
        "postgres": ["psycopg[binary]>=3.1"],
        "redis": ["redis>=5"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.5",
            "psycopg[binary]>=3.1",
            "asgiref>=3.7",
            "aiosmtpd>=1.4",
            "redis>=5",
            "gunicorn>=21",  # test_faults.py: a real multi-process server
            "hypothesis>=6.100",  # test_fuzz.py: property-based fuzzing of every route
            "playwright>=1.40",  # test_browser_example.py: the example page in Chromium
        ],
        "bench": ["gunicorn>=21", "psycopg[binary]>=3.1", "redis>=5"],
    },
    classifiers=[
        "Framework :: Flask",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP :: Session",
        "Typing :: Typed",
    ],
)
