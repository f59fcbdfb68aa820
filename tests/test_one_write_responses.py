"""A response's head goes out with its first body chunk (api/http_protocol.HeadWithBody), and nothing
that must go out alone or at once waits: 100 Continue, HEAD answers, a close, pipelined answers."""

from __future__ import annotations

import asyncio
import json

import pytest

from api.http_protocol import CONTINUE, JOIN_MAX_BYTES, HeadWithBody
from tests.live_service import LIVE, read_response, serving
from tests.pg import issue_token


class Recording:
    """The server's transport as far as a response's writes go: what was written, in how many calls."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_the_head_waits_for_the_first_body_chunk_and_goes_out_with_it():
    transport = Recording()
    view = HeadWithBody(transport)
    view.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
    assert transport.writes == []
    view.write(b"hello")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]
    view.write(b" more")  # a streamed response's later chunks go straight through
    assert transport.writes[1:] == [b" more"] and not view.is_closing()


def test_100_continue_goes_out_at_once_and_the_head_still_waits_for_its_body():
    transport = Recording()
    view = HeadWithBody(transport)
    view.write(CONTINUE)
    assert transport.writes == [CONTINUE]
    view.write(b"HTTP/1.1 201 Created\r\n\r\n")
    view.write(b"{}")
    assert transport.writes == [CONTINUE, b"HTTP/1.1 201 Created\r\n\r\n{}"]


def test_a_close_sends_a_waiting_head_first():
    transport = Recording()
    view = HeadWithBody(transport)
    view.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    view.close()  # the app failed after its head: the client still sees the status, then the close
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"] and transport.closed


def test_a_large_first_chunk_is_not_copied_to_join_it():
    transport = Recording()
    view = HeadWithBody(transport)
    body = b"x" * (JOIN_MAX_BYTES + 1)
    view.write(b"HTTP/1.1 200 OK\r\n\r\n")
    view.write(body)
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\n", body] and transport.writes[1] is body


@pytest.fixture(scope="module")
def service(database_url):
    with serving(database_url) as running:
        yield running


async def test_pipelined_head_and_get_answers_come_whole_and_in_order(service):
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(
            f"HEAD {LIVE} HTTP/1.1\r\nHost: t\r\n\r\nGET {LIVE} HTTP/1.1\r\nHost: t\r\n\r\n"
            f"HEAD {LIVE} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        )
        first = await asyncio.wait_for(read_response(reader, "HEAD"), 10)
        second = await asyncio.wait_for(read_response(reader), 10)
        third = await asyncio.wait_for(read_response(reader, "HEAD"), 10)
        assert [first[0], second[0], third[0]] == [200, 200, 200]
        assert int(first[1]["content-length"]) > 0 and first[2] == b""  # HEAD: the head, no body
        assert json.loads(second[2])["status"] == "alive"
    finally:
        writer.close()


async def test_a_body_sent_after_100_continue_is_read_and_answered(service, database_url):
    token = issue_token(database_url, 1000, "continue")
    body = json.dumps({"name": "continued", "dimensions": 3, "metric": "cosine"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
    try:
        writer.write(
            b"POST /api/v1/collections HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert interim == CONTINUE  # sent while the head of the answer does not exist yet
        writer.write(body)
        status, _, answer = await asyncio.wait_for(read_response(reader), 10)
        assert status == 201 and json.loads(answer)["name"] == "continued"
    finally:
        writer.close()
