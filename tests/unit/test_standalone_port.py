"""`spinner standalone` refuses a port something listens on, and takes one its stopped self just left."""

from __future__ import annotations

import socket

from spinner.standalone import port_is_free


def _listener() -> socket.socket:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the gateway's server binds
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


def test_a_port_left_in_time_wait_by_a_stopped_standalone_is_free() -> None:
    server = _listener()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server side closes first: its end of the connection lingers in TIME_WAIT on `port`
    client.close()
    server.close()
    with socket.socket() as plain:  # what the check did before: a bind without SO_REUSEADDR is refused
        try:
            plain.bind(("127.0.0.1", port))
            lingering = False
        except OSError:
            lingering = True
    assert lingering, "the connection did not linger: this test proves nothing on this machine"
    assert port_is_free(port)


def test_a_port_something_listens_on_is_not_free() -> None:
    server = _listener()
    try:
        assert not port_is_free(server.getsockname()[1])
    finally:
        server.close()
