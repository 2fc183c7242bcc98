"""One reading of the Cookie header for the API middleware and the page state."""

from fibernode import cookies
from fibernode.api.security import websocket_cookie
from fibernode.state.session import cookie_value


def test_first_value_wins_quotes_are_dropped_and_junk_is_ignored():
    header = 'a=1; b="two"; junk; =x; a=3; c='
    assert cookies.parse(header) == {"a": "1", "b": "two", "c": ""}
    assert cookies.value(header, "b") == "two" and cookies.value(header, "zz") == ""
    assert cookies.parse(None) == {} and cookies.value("", "a") == ""


def test_the_middleware_and_the_page_state_read_a_header_alike():
    header = 'fn_device="d1"; fn_session=tok; fn_device=d2'
    assert cookie_value(header, "fn_device") == cookies.value(header, "fn_device") == "d1"
    assert "fn_device=d1" in websocket_cookie(header)
