from pathlib import Path

import pytest

from roomcast.config import Settings, load_settings


def test_defaults_just_work() -> None:
    s = Settings()
    assert s.host == "127.0.0.1" and s.port == 8080
    assert s.data_dir == Path("var")
    assert s.resolved_database_url.startswith("sqlite+aiosqlite:///")
    assert s.resolved_database_url.endswith("/var/roomcast.db")
    assert s.resolved_storage_dir == (Path("var") / "storage").resolve()
    assert s.resolved_public_url == "http://127.0.0.1:8080"


def test_toml_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "roomcast.toml"
    cfg.write_text('[roomcast]\nport = 9000\nhost = "127.0.0.2"\nlog_level = "debug"\n')
    s = load_settings(cfg)
    assert (s.port, s.host, s.log_level) == (9000, "127.0.0.2", "debug")
    monkeypatch.setenv("ROOMCAST_PORT", "9100")
    s = load_settings(cfg)
    assert s.port == 9100 and s.host == "127.0.0.2"
    s = load_settings(cfg, port=9200, host=None)
    assert s.port == 9200 and s.host == "127.0.0.2"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('data_dir = "/tmp/x"\n')
    monkeypatch.setenv("ROOMCAST_CONFIG", str(cfg))
    assert load_settings().data_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    "text",
    ["port = 'abc'\n", "port = 70000\n", "log_level = 'loud'\n", "no_such_setting = 1\n", "port = [\n"],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(ValueError):
        load_settings(cfg)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_settings(tmp_path / "nope.toml")
