import stat
from pathlib import Path

import pytest

from roomcast.crypto import SecretBox, SecretBoxError, new_secret_id


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "d" / "secret.key"
    box = SecretBox.from_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = box.seal("hunter2-very-secret")
    assert "hunter2" not in sealed
    assert SecretBox.from_file(path).open(sealed) == "hunter2-very-secret"


def test_other_key_cannot_open(tmp_path: Path) -> None:
    a = SecretBox.from_file(tmp_path / "a.key")
    b = SecretBox.from_file(tmp_path / "b.key")
    with pytest.raises(SecretBoxError):
        b.open(a.seal("x"))


def test_secret_id_shape() -> None:
    sid = new_secret_id()
    assert sid.startswith("AKID") and len(sid) == 36 and sid.isalnum()
