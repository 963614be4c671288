"""Writes batched to the end of the event loop's turn (transport.WriteBatch)."""

from __future__ import annotations

import _socket
import socket
import time

import gevent
import pytest

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
    sent: list[str] = []
    stamps = [[0.0], [0.0]]
    before = time.time()
    a.send_soon(b"MAIL FROM:<a>\r\n", "MAIL", stamps[0], lambda: sent.append("a"))
    b.send_soon(b"RCPT TO:<b>\r\n", "RCPT", stamps[1], lambda: sent.append("b"))
    assert _received(peer_a) == _received(peer_b) == b""  # not yet: this turn goes on
    gevent.sleep(0)  # the loop turns
    assert _received(peer_a) == b"MAIL FROM:<a>\r\n"
    assert _received(peer_b) == b"RCPT TO:<b>\r\n"
    assert sent == ["a", "b"]
    assert before <= stamps[0][0] <= stamps[1][0] <= time.time()


def test_a_connection_closed_before_the_turn_ends_writes_nothing() -> None:
    transport, peer = _pair()
    stamp = [0.0]
    transport.send_soon(b"QUIT\r\n", "QUIT", stamp, pytest.fail)
    transport.close(abort=False)
    gevent.sleep(0)
    assert peer.recv(100) == b""  # closed, nothing written
    assert stamp == [0.0]


def test_a_write_to_a_broken_connection_ends_the_wait_for_its_reply() -> None:
    transport, peer = _pair()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    peer.close()
    transport.send_soon(b"MAIL FROM:<a>\r\n", "MAIL", [0.0], pytest.fail)
    with gevent.Timeout(5):
        assert transport.read() == b""  # lost, not a wait for ever


def test_what_does_not_fit_is_written_as_the_peer_reads() -> None:
    transport, peer = _pair()
    assert transport.sock is not None
    transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    data = bytes(range(256)) * 1024  # 256 KB, more than the buffers take at once
    done: list[bool] = []
    transport.send_soon(data, "end of data", [0.0], lambda: done.append(True))
    gevent.sleep(0)  # the batch is written: part of it
    assert not done
    got = b""
    with gevent.Timeout(5):
        while len(got) < len(data):
            gevent.sleep(0.001)
            got += _received(peer)
        while not done:
            gevent.sleep(0.001)
    assert got == data
