"""Configuration: the example file matches SCHEMA, bad input stops start-up naming the key, production
refuses insecure values, the environment overrides the file. Every call passes an explicit ``environ``
so the real environment (a developer's IDP_CONFIG, say) cannot leak in."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib

import pytest

from idp.config import DEV_SECRET_KEY
from idp.config import SCHEMA
from idp.config import ConfigError
from idp.config import as_dict
from idp.config import defaults
from idp.config import load_config

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "config.example.toml")
GOOD_SECRET = "k" * 32
_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")
_SECTION_LINE = re.compile(r"^\[([A-Za-z_][A-Za-z0-9_]*)\]\s*$")


def production(**sections) -> dict:
    """Overrides for a production configuration that passes every check, plus ``sections``."""
    config = {
        "server": {"environment": "production", "secret_key": GOOD_SECRET, "issuer": "https://id.example.ru"}
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


# -- the example file ---------------------------------------------------------------------------------


def _example() -> dict:
    with open(EXAMPLE, "rb") as fh:
        return tomllib.load(fh)


def test_example_file_has_every_section_and_key_of_the_schema():
    example = _example()
    assert list(example) == list(SCHEMA)
    for section, keys in SCHEMA.items():
        assert list(example[section]) == list(keys), f"[{section}]"


def test_example_file_values_are_the_schema_defaults():
    example = _example()
    for section, keys in SCHEMA.items():
        for key, option in keys.items():
            value = example[section][key]
            assert type(value) is type(option.default), f"[{section}] {key}"
            assert value == option.default, f"[{section}] {key}"


def test_every_key_in_the_example_file_is_documented_with_default_and_secrecy():
    with open(EXAMPLE, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    seen = []
    section = None
    for number, line in enumerate(lines):
        if match := _SECTION_LINE.match(line):
            section = match.group(1)
            continue
        match = _KEY_LINE.match(line)
        if not match:
            continue
        key = match.group(1)
        seen.append((section, key))
        comments = []
        for previous in reversed(lines[:number]):
            if not previous.startswith("#"):
                break
            comments.append(previous)
        assert comments, f"[{section}] {key} has no comment above it"
        assert any("default" in c and "secret" in c for c in comments), (
            f"[{section}] {key}: no comment line giving its default and whether it is secret"
        )
        option = SCHEMA[section][key]
        marker = "secret: yes" if option.secret else "secret: no"
        assert any(marker in c for c in comments), f"[{section}] {key} should say {marker!r}"
    assert seen == [(s, k) for s, keys in SCHEMA.items() for k in keys]


def test_example_file_loads_once_a_secret_is_given():
    values = load_config(environ={"IDP_CONFIG": EXAMPLE, "IDP_SERVER_SECRET_KEY": GOOD_SECRET})
    expected = defaults()
    expected["server"]["secret_key"] = GOOD_SECRET
    assert as_dict(values) == expected


def test_example_file_as_shipped_is_refused_in_production():
    with pytest.raises(ConfigError, match=r"\[server\] secret_key"):
        load_config(environ={"IDP_CONFIG": EXAMPLE})


# -- sources and their order --------------------------------------------------------------------------


def test_without_a_file_the_development_preset_applies():
    values = load_config(environ={})
    assert values.server.environment == "development"
    assert values.server.secret_key == DEV_SECRET_KEY


def test_file_then_environment_then_overrides(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text(
        '[server]\nenvironment = "development"\nsecret_key = "from-file"\n'
        "[oauth]\ncode_ttl = 30\naccess_token_ttl = 300\n",
        encoding="utf-8",
    )
    environ = {"IDP_CONFIG": str(path), "IDP_OAUTH_ACCESS_TOKEN_TTL": "900", "IDP_OAUTH_ID_TOKEN_TTL": "1200"}
    values = load_config({"oauth": {"id_token_ttl": 1800}}, environ=environ)
    assert values.server.secret_key == "from-file"
    assert values.oauth.code_ttl == 30
    assert values.oauth.access_token_ttl == 900
    assert values.oauth.id_token_ttl == 1800
    # With a file, the development preset is not applied on top of it.
    assert values.session.idle_timeout == SCHEMA["session"]["idle_timeout"].default


# -- unknown keys, bad values, wrong types ------------------------------------------------------------


def test_unknown_section_is_refused():
    with pytest.raises(ConfigError, match=r"unknown section \[nosuch\]"):
        load_config({"nosuch": {"x": 1}}, environ={})


def test_unknown_key_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"unknown key \[server\] isuer"):
        load_config({"server": {"isuer": "https://id.example.ru"}}, environ={})


def test_a_section_that_is_not_a_table_is_refused():
    with pytest.raises(ConfigError, match=r"\[server\] must be a table"):
        load_config({"server": "https://id.example.ru"}, environ={})


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("server", "issuer", "ftp://id.example.ru"),
        ("server", "issuer", "https://id.example.ru/"),
        ("server", "issuer", "https://id.example.ru?x=1"),
        ("server", "environment", "staging"),
        ("server", "timezone", "Mars/Olympus_Mons"),
        ("server", "proxy_count", 6),
        ("oauth", "code_ttl", 5),
        ("passwords", "bcrypt_rounds", 3),
        ("login", "max_failures", 2),
        ("login", "rate_limit", "lots"),
        ("sms", "backend", "pigeon"),
    ],
)
def test_bad_value_is_refused_naming_the_key(section, key, value):
    with pytest.raises(ConfigError) as excinfo:
        load_config({section: {key: value}}, environ={})
    assert f"[{section}] {key}" in str(excinfo.value)


def test_ipv6_prefix_is_a_prefix_length_of_64_by_default():
    assert load_config({}, environ={}).limits.ipv6_prefix == 64
    assert load_config({"limits": {"ipv6_prefix": 56}}, environ={}).limits.ipv6_prefix == 56
    for value in (31, 129):
        with pytest.raises(ConfigError, match=r"\[limits\] ipv6_prefix: must be between 32 and 128"):
            load_config({"limits": {"ipv6_prefix": value}}, environ={})


@pytest.mark.parametrize(
    "section, key, value, expected, got",
    [
        ("oauth", "code_ttl", True, "int", "bool"),
        ("oauth", "code_ttl", "60", "int", "str"),
        ("oauth", "code_ttl", 60.0, "int", "float"),
        ("captcha", "enabled", 1, "bool", "int"),
        ("captcha", "enabled", "false", "bool", "str"),
        ("server", "issuer", 5000, "str", "int"),
    ],
)
def test_wrong_type_is_refused(section, key, value, expected, got):
    with pytest.raises(ConfigError) as excinfo:
        load_config({section: {key: value}}, environ={})
    message = str(excinfo.value)
    assert f"[{section}] {key}" in message
    assert f"expected {expected}, got {got}" in message


def test_bad_value_in_the_file_is_refused_naming_the_key(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text('[server]\nenvironment = "development"\nissuer = "id.example.ru"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[server\] issuer"):
        load_config(environ={"IDP_CONFIG": str(path)})


def test_unknown_key_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text("[login]\nmax_failure = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={"IDP_CONFIG": str(path)})
    assert str(path) in str(excinfo.value) and "[login] max_failure" in str(excinfo.value)


# -- production checks --------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", DEV_SECRET_KEY, "s" * 31])
def test_production_refuses_a_missing_dev_or_short_secret(secret):
    with pytest.raises(ConfigError, match=r"\[server\] secret_key"):
        load_config(production(server={"secret_key": secret}), environ={})


@pytest.mark.parametrize("issuer", ["http://id.example.ru", "http://10.0.0.5:5000", "http://0.0.0.0:5000"])
def test_production_refuses_http_issuer_off_loopback(issuer):
    with pytest.raises(ConfigError, match=r"\[server\] issuer"):
        load_config(production(server={"issuer": issuer}), environ={})


@pytest.mark.parametrize(
    "issuer",
    [
        "https://id.example.ru",
        "https://id.example.ru/idp",
        "http://127.0.0.1:5000",
        "http://localhost",
        "http://[::1]:8080",
    ],
)
def test_production_accepts_https_and_loopback_http(issuer):
    values = load_config(production(server={"issuer": issuer}), environ={})
    assert values.server.issuer == issuer
    assert values.server.environment == "production"


def test_development_accepts_what_production_refuses():
    insecure = {"environment": "development", "issuer": "http://id.example.ru", "secret_key": ""}
    values = load_config({"server": insecure}, environ={})
    assert values.server.issuer == "http://id.example.ru"


def test_production_is_the_default_when_a_file_is_named(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text('[server]\nissuer = "https://id.example.ru"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[server\] secret_key"):
        load_config(environ={"IDP_CONFIG": str(path)})
    values = load_config(environ={"IDP_CONFIG": str(path), "IDP_SERVER_SECRET_KEY": GOOD_SECRET})
    assert values.server.environment == "production"


# -- environment variables ----------------------------------------------------------------------------


def test_environment_overrides_str_int_and_bool():
    environ = {
        "IDP_SERVER_ISSUER": "https://id.example.ru",
        "IDP_SERVER_SECRET_KEY": GOOD_SECRET,
        "IDP_SERVER_ENVIRONMENT": "production",
        "IDP_LOGIN_MAX_FAILURES": "5",
        "IDP_CAPTCHA_ENABLED": "false",
        "IDP_RATE_LIMITS_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "IDP_DATABASE_URL": "postgresql+psycopg://idp:pw@db/idp",
    }
    values = load_config(environ=environ)
    assert values.server.issuer == "https://id.example.ru"
    assert values.server.secret_key == GOOD_SECRET
    assert values.login.max_failures == 5
    assert values.captcha.enabled is False
    assert values.rate_limits.storage_uri == "redis://127.0.0.1:6379/0"
    assert values.database.url == "postgresql+psycopg://idp:pw@db/idp"


def test_string_variables_are_taken_verbatim():
    # A string key is not parsed as TOML: quotes, '#' and '=' stay as typed.
    secret = 'a"b#c=d' + "x" * 30
    values = load_config(environ={"IDP_SERVER_SECRET_KEY": secret})
    assert values.server.secret_key == secret


def test_environment_beats_the_file(tmp_path):
    path = tmp_path / "idp.toml"
    path.write_text('[server]\nenvironment = "development"\n[login]\nmax_failures = 7\n', encoding="utf-8")
    values = load_config(environ={"IDP_CONFIG": str(path), "IDP_LOGIN_MAX_FAILURES": "4"})
    assert values.login.max_failures == 4


@pytest.mark.parametrize(
    "name, raw",
    [("IDP_LOGIN_MAX_FAILURES", "five"), ("IDP_CAPTCHA_ENABLED", "yes"), ("IDP_OAUTH_CODE_TTL", "")],
)
def test_unreadable_environment_value_names_the_variable(name, raw):
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={name: raw})
    assert name in str(excinfo.value)


@pytest.mark.parametrize(
    "name, raw, key",
    [
        ("IDP_LOGIN_MAX_FAILURES", "true", "[login] max_failures"),
        ("IDP_LOGIN_MAX_FAILURES", '"5"', "[login] max_failures"),
        ("IDP_CAPTCHA_ENABLED", "0", "[captcha] enabled"),
        ("IDP_OAUTH_CODE_TTL", "1", "[oauth] code_ttl"),
    ],
)
def test_wrongly_typed_or_out_of_range_environment_value_is_refused(name, raw, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(environ={name: raw})


def test_unrelated_environment_variables_are_ignored():
    values = load_config(environ={"IDP_SERVER_NOSUCH": "x", "IDP_INSTANCE_PATH": "/tmp", "PATH": "/usr/bin"})
    assert values.server.environment == "development"


# -- IDP_CONFIG ---------------------------------------------------------------------------------------


def test_missing_config_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={"IDP_CONFIG": str(missing)})
    assert "IDP_CONFIG" in str(excinfo.value) and str(missing) in str(excinfo.value)


def test_invalid_toml_is_an_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[server\nissuer = \n", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ={"IDP_CONFIG": str(path)})
    assert str(path) in str(excinfo.value) and "TOML" in str(excinfo.value)


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="IDP_CONFIG"):
        load_config(environ={"IDP_CONFIG": str(tmp_path)})


# -- warnings -----------------------------------------------------------------------------------------


def test_captcha_off_in_production_logs_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="idp.config"):
        load_config(production(captcha={"enabled": False}), environ={})
    warnings = [r for r in caplog.records if r.name == "idp.config" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "[captcha] enabled = false" in warnings[0].getMessage()


def test_captcha_on_in_production_and_off_in_development_are_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="idp.config"):
        load_config(production(), environ={})
        load_config({"captcha": {"enabled": False}}, environ={})
    assert not [r for r in caplog.records if r.name == "idp.config"]


def test_development_file_without_a_secret_gets_the_development_secret(tmp_path):
    path = tmp_path / "dev.toml"
    path.write_text('[server]\nenvironment = "development"\n', encoding="utf-8")
    values = load_config(environ={"IDP_CONFIG": str(path)})
    assert values.server.secret_key == DEV_SECRET_KEY


# -- renamed sections ---------------------------------------------------------------------------------


def test_the_old_reset_section_is_read_as_limits_with_a_warning(tmp_path, caplog):
    path = tmp_path / "old.toml"
    path.write_text('[server]\nenvironment = "development"\n[reset]\ndaily_limit = 5\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="idp.config"):
        values = load_config(environ={"IDP_CONFIG": str(path), "IDP_RESET_SMS_DAILY_BUDGET": "10"})
    assert values.limits.daily_limit == 5 and values.limits.sms_daily_budget == 10
    warnings = [r.getMessage() for r in caplog.records if r.name == "idp.config"]
    assert len(warnings) == 2 and all("[reset] is now called [limits]" in w for w in warnings)


def test_a_key_under_its_old_and_new_section_is_refused():
    with pytest.raises(ConfigError, match=r"\[limits\] daily_limit is given twice"):
        load_config({"reset": {"daily_limit": 4}, "limits": {"daily_limit": 5}}, environ={})


def test_settings_are_frozen_dataclasses_built_from_the_declarations():
    values = load_config(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.login.max_failures = 1  # type: ignore[misc]
    # A TOML list is a tuple in the settings, so they stay hashable and immutable.
    assert values.sms.allowed_country_codes == ("7",)
    for section, keys in SCHEMA.items():
        assert list(dataclasses.asdict(getattr(values, section))) == list(keys)
