"""JOYY response codes and the error that carries one (the gateway answers it)."""

from __future__ import annotations

MESSAGES = {
    0: "success",
    1000: "No token permission",
    1001: "Invalid token",
    1002: "No appid",
    2101: "Invalid parameter",
    2103: "Timeout",
    2104: "Internal error",
    2105: "Too-frequent calling of command",
    4004: "Unsupported recording parameters",
    4005: "Room is not publishing",
    4011: "Recording task already exists",
    4012: "Recording resid is invalid or has been invalidated by timeout",
    4013: "Recording recordid does not exist",
    4014: "Stream mixing operation failed",
    4016: "Invalid mixed stream parameters",
    4017: "Stream mixing operation failed",
    4019: "Recording task type is not mixed stream recording",
}


class JoyError(Exception):
    def __init__(self, code: int, detail: str = "") -> None:
        message = MESSAGES.get(code, "Recording error")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = f"{message}: {detail}" if detail else message

    @property
    def status(self) -> int:
        if self.code in (1000, 1001, 1002):
            return 401
        if self.code == 2105:
            return 429
        if self.code in (2103, 2104):
            return 500
        return 404
