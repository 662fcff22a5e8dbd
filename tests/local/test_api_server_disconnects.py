"""The local API server says nothing when a client leaves mid-answer, and still
reports every other error of a request (chalicelib.local.api_server)."""

from __future__ import annotations

import socketserver

import pytest

from chalicelib.local.api_server import quiet_disconnects


def _fail_with(server: socketserver.BaseServer, error: BaseException) -> None:
    try:
        raise error
    except BaseException:
        server.handle_error(None, ("127.0.0.1", 4242))  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError()])
def test_a_client_that_went_away_prints_no_traceback(
    error: BaseException, capsys: pytest.CaptureFixture[str]
) -> None:
    server = socketserver.BaseServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    quiet_disconnects(server)
    _fail_with(server, error)
    assert capsys.readouterr().err == ""


def test_any_other_error_is_still_reported(capsys: pytest.CaptureFixture[str]) -> None:
    server = socketserver.BaseServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    quiet_disconnects(server)
    _fail_with(server, ValueError("a real bug"))
    err = capsys.readouterr().err
    assert "ValueError: a real bug" in err and "127.0.0.1" in err
