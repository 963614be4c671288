"""Writes batched to the end of the event loop's turn (transport.WriteBatch)."""

from __future__ import annotations

import _socket
import socket
import time

import gevent

from locust_smtp.transport import SocketTransport


def _pair() -> tuple[SocketTransport, socket.socket]:
    ours, theirs = socket.socketpair()
    transport = SocketTransport(_socket.socket(fileno=ours.detach()))
    theirs.setblocking(False)
    return transport, theirs


def _received(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except BlockingIOError:
        return b""


def test_writes_of_one_turn_go_out_together_at_its_end_stamped_when_written() -> None:
    (a, peer_a), (b, peer_b) = _pair(), _pair()
    stamps = [[0.0], [0.0]]
    before = time.time()
    a.send_soon(b"MAIL FROM:<a>\r\n", stamps[0])
    b.send_soon(b"RCPT TO:<b>\r\n", stamps[1])
    assert _received(peer_a) == _received(peer_b) == b""  # not yet: this turn goes on
    gevent.sleep(0)  # the loop turns
    assert _received(peer_a) == b"MAIL FROM:<a>\r\n"
    assert _received(peer_b) == b"RCPT TO:<b>\r\n"
    assert before <= stamps[0][0] <= stamps[1][0] <= time.time()


def test_a_connection_closed_before_the_turn_ends_writes_nothing() -> None:
    transport, peer = _pair()
    stamp = [0.0]
    transport.send_soon(b"QUIT\r\n", stamp)
    transport.close(abort=False)
    gevent.sleep(0)
    assert peer.recv(100) == b""  # closed, nothing written
    assert stamp == [0.0]


def test_a_write_to_a_broken_connection_ends_the_wait_for_its_reply() -> None:
    transport, peer = _pair()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()
    transport.send_soon(b"MAIL FROM:<a>\r\n", [0.0])
    with gevent.Timeout(5):
        assert transport.read() == b""  # lost, not a wait for ever


def _filled(transport: SocketTransport) -> None:
    """Fill the socket buffers, so that the next write goes out only in part."""
    assert transport.sock is not None
    transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    while True:
        try:
            transport.sock.send(b"x" * 4096)
        except BlockingIOError:
            return


def test_what_does_not_fit_is_written_as_the_peer_reads() -> None:
    transport, peer = _pair()
    _filled(transport)
    data = bytes(range(256)) * 32
    transport.send_soon(data, [0.0])
    gevent.sleep(0)  # the batch is written: part of it
    assert transport._unwritten is not None
    got = b""
    with gevent.Timeout(5):
        while not got.endswith(data):
            gevent.sleep(0.001)
            got += _received(peer)
    assert got.lstrip(b"x") == data
    assert transport._unwritten is None


def test_a_write_that_never_fits_ends_in_the_replys_timeout() -> None:
    """The reply's own timer bounds the wait: a peer that neither reads nor answers
    cannot hang the reader (the rest of the write does not take the timer over)."""
    from gevent.hub import get_hub

    transport, _peer = _pair()
    transport.timer = get_hub().loop.timer(0.3, 0.3)
    _filled(transport)
    transport.send_soon(b"y" * 8000, [0.0])
    with gevent.Timeout(5):
        assert transport.read() is None  # None: the timer ran out
