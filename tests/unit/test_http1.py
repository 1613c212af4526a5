"""The order-path HTTP/1.1 connection (cexnode.net.http1).

* ``_Answer`` / ``parse_head`` against generated answers (Content-Length, chunked with random chunk
  splits, extensions and trailers, close-delimited, 1xx, HEAD, 204/304), fed whole, byte by byte and
  in random pieces; malformed answers raise ValueError; garbage and mutations raise nothing else.
* ``OrderConnection`` against a real aiohttp server, a raw ``asyncio.start_server`` server and a
  plain blocking socket, all on 127.0.0.1, on asyncio and on uvloop (the node runs on uvloop).
"""
from __future__ import annotations

import asyncio
import contextlib
import pathlib
import random
import socket
import string
import time
from dataclasses import dataclass
from typing import Callable, Optional

import pytest
import uvloop
from aiohttp import web
from multidict import CIMultiDict

from cexnode.net.http1 import (_MAX_BODY, _MAX_HEAD, ConnectionBusy, ConnectionLostError, OrderConnection, _Answer,
                               parse_head)

# ==================================================================================================
# generated answers
# ==================================================================================================

TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
VCHAR = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))   # visible ASCII + obs-text
FRAMING = {"content-length", "transfer-encoding", "connection"}


def rand_case(rng: random.Random, s: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


def rand_header(rng: random.Random) -> tuple[str, str]:
    while True:
        name = "".join(rng.choice(TOKEN) for _ in range(rng.randint(1, 20)))
        if name.lower() not in FRAMING:
            break
    n = rng.choice([0, 1, 2, rng.randint(3, 60)])
    chars = [rng.choice(VCHAR) for _ in range(n)]
    for i in range(1, n - 1):                        # whitespace inside a value is kept
        if rng.random() < 0.1:
            chars[i] = rng.choice(b" \t")
    return name, bytes(chars).decode("latin-1")


def ows(rng: random.Random) -> bytes:
    return rng.choice([b"", b"", b" ", b"  ", b"\t", b" \t"])


@dataclass
class Gen:
    wire: bytes                       # the answer alone (for "eof": up to the close)
    status: int
    headers: list                     # [(name, value)] in wire order
    body: bytes
    close: bool                       # the connection closes after it
    mode: str                         # length | chunked | eof | none
    trailing: bytes = b""             # bytes after the answer (must stay in the buffer)


def chunk_wire(rng: random.Random, body: bytes) -> bytes:
    out, i = [], 0
    while i < len(body):
        n = rng.choice([1, 2, rng.randint(1, 16), rng.randint(1, 600), len(body) - i])
        n = min(n, len(body) - i)
        size = rand_case(rng, "%x" % n)
        if rng.random() < 0.2:
            size = "0" * rng.randint(1, 3) + size
        line = size.encode()
        if rng.random() < 0.3:                       # chunk extensions
            line += rng.choice([b";a=b", b";name", b" ;x=1;y", b';q="a b"', b";" + rng.choice(TOKEN).encode()])
        out.append(line + b"\r\n" + body[i:i + n] + b"\r\n")
        i += n
    last = b"0" * rng.randint(1, 2)
    if rng.random() < 0.2:
        last += b";end=1"
    out.append(last + b"\r\n")
    for _ in range(rng.choice([0, 0, 1, 2])):      # trailers: not part of the headers
        k, v = rand_header(rng)
        out.append(k.encode("latin-1") + b":" + ows(rng) + v.encode("latin-1") + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


def rand_body(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, rng.randint(2, 64), rng.randint(0, 700), rng.randint(0, 700), rng.randint(700, 6000)])
    body = bytes(rng.getrandbits(8) for _ in range(n))
    if n and rng.random() < 0.3:                     # bodies that look like protocol text
        body = (b"\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n" * (n // 20 + 1))[:n]
    return body


def make_answer(rng: random.Random, head_request: bool = False, mode: Optional[str] = None) -> Gen:
    status = rng.choice([200, 200, 201, 202, 204, 304, 400, 401, 403, 404, 418, 429, 500, 502, 503,
                         rng.randint(200, 599)])
    http10 = rng.random() < 0.1
    reason = rng.choice([b"", b"OK", b"Not Found", b"Some  Reason: Phrase"])
    status_line = b"HTTP/1.0 " if http10 else b"HTTP/1.1 "
    status_line += b"%d" % status
    if reason or rng.random() < 0.5:
        status_line += b" " + reason
    headers = [rand_header(rng) for _ in range(rng.randint(0, 8))]
    no_body = head_request or status in (204, 304)
    mode = mode or rng.choice(["length", "chunked", "eof"])
    body = b"" if no_body else rand_body(rng)
    if mode == "length":
        headers.insert(rng.randint(0, len(headers)), (rand_case(rng, "Content-Length"),
                                                      str(len(body) if not no_body else rng.randint(0, 9999))))
    elif mode == "chunked":
        headers.insert(rng.randint(0, len(headers)), (rand_case(rng, "Transfer-Encoding"),
                                                      rand_case(rng, rng.choice(["chunked", "gzip, chunked"]))))
    conn = rng.choice([None, None, "keep-alive", "close", "Keep-Alive, Close"])
    if conn is not None:
        conn = rand_case(rng, conn)
        headers.insert(rng.randint(0, len(headers)), (rand_case(rng, "Connection"), conn))
    head = status_line + b"\r\n" + b"".join(
        k.encode("latin-1") + b":" + ows(rng) + v.encode("latin-1") + ows(rng) + b"\r\n" for k, v in headers) + b"\r\n"
    if no_body:
        wire, eff = head, "none"
    elif mode == "chunked":
        wire, eff = head + chunk_wire(rng, body), "chunked"
    else:
        wire, eff = head + body, mode
    close = http10 or (conn is not None and "close" in conn.lower()) or eff == "eof"
    trailing = b""
    if eff != "eof":
        trailing = rng.choice([b"", b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                               bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))), b"\r\n", b"0\r\n\r\n"])
    return Gen(wire, status, headers, body, close, eff, trailing)


def split(rng: random.Random, data: bytes, how: str) -> list[bytes]:
    if how == "whole" or len(data) < 2:
        return [data]
    if how == "bytes":
        return [data[i:i + 1] for i in range(len(data))]
    k = rng.randint(1, min(len(data) - 1, 20))
    cuts = sorted(rng.sample(range(1, len(data)), k))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def feed_pieces(pieces: list[bytes], head_request: bool = False) -> tuple[_Answer, bytearray]:
    """Feed as the connection does: append, feed until done; what comes after is only appended."""
    ans, buf = _Answer(), bytearray()
    for p in pieces:
        buf += p
        if not ans.done:
            ans.feed(buf, head_request)
    return ans, buf


def check(ans: _Answer, buf: bytearray, g: Gen, where: str) -> None:
    assert ans.status == g.status, where
    assert ans.headers is not None and list(ans.headers.items()) == g.headers, where
    assert bytes(ans.body) == g.body, where
    assert ans.close == g.close, where
    if g.mode == "eof":
        assert not ans.done and ans.length == -1 and not ans.chunked and bytes(buf) == b"", where
    else:
        assert ans.done, where
        assert bytes(buf) == g.trailing, where


# ==================================================================================================
# 1. parser properties
# ==================================================================================================

@pytest.mark.parametrize("seed", range(4))
def test_generated_answers_parse_identically_in_any_fragmentation(seed):
    rng = random.Random(1000 + seed)
    modes = {"length": 0, "chunked": 0, "eof": 0, "none": 0}
    for case in range(100):
        g = make_answer(rng)
        modes[g.mode] += 1
        data = g.wire + g.trailing
        for how in ("whole", "bytes", "random", "random"):
            if how == "bytes" and len(data) > 2500 and case % 4:
                continue                                   # keep the run short: a quarter of the big ones
            ans, buf = feed_pieces(split(rng, data, how))
            check(ans, buf, g, "seed %d case %d %s: %r" % (seed, case, how, data[:300]))
        # one byte short of the end: never done (not even when what is there parses)
        ans, buf = feed_pieces([g.wire[:-1]])
        assert not ans.done
    assert all(n > 3 for n in modes.values()), modes          # the generator covers every framing


def test_fed_buffer_is_consumed_in_place_and_the_rest_is_left_untouched():
    body = b"0123456789"
    nxt = b"HTTP/1.1 204 No Content\r\n\r\n"
    buf = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + body + nxt)
    ans = _Answer()
    ans.feed(buf, False)
    assert ans.done and bytes(ans.body) == body and bytes(buf) == nxt
    # the next answer, from the very same buffer object
    ans2 = _Answer()
    ans2.feed(buf, False)
    assert ans2.done and ans2.status == 204 and bytes(buf) == b""


@pytest.mark.parametrize("seed", range(3))
def test_interim_1xx_answers_are_skipped(seed):
    rng = random.Random(2000 + seed)
    for case in range(60):
        interim = b""
        for _ in range(rng.randint(1, 3)):
            st = rng.choice([100, 102, 103, 199])
            interim += b"HTTP/1.1 %d Interim\r\n" % st
            if rng.random() < 0.5:
                interim += b"Link: </a.css>; rel=preload\r\nX-Interim: 1\r\n"
            interim += b"\r\n"
        g = make_answer(rng)
        data = interim + g.wire + g.trailing
        for how in ("whole", "bytes", "random"):
            ans, buf = feed_pieces(split(rng, data, how))
            check(ans, buf, g, "seed %d case %d %s" % (seed, case, how))
            assert "X-Interim" not in ans.headers


@pytest.mark.parametrize("seed", range(2))
def test_head_request_answers_have_no_body(seed):
    rng = random.Random(3000 + seed)
    for case in range(80):
        g = make_answer(rng, head_request=True, mode=rng.choice(["length", "chunked", "eof"]))
        assert g.mode == "none" and g.body == b""
        data = g.wire + g.trailing
        for how in ("whole", "bytes", "random"):
            ans, buf = feed_pieces(split(rng, data, how), head_request=True)
            check(ans, buf, g, "seed %d case %d %s" % (seed, case, how))


def test_head_request_with_content_length_leaves_the_following_bytes():
    nxt = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    buf = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/plain\r\n\r\n" + nxt)
    ans = _Answer()
    ans.feed(buf, True)
    assert ans.done and ans.status == 200 and ans.body == b"" and bytes(buf) == nxt
    assert ans.headers["content-length"] == "1234"
    # the same bytes as the answer to a GET: the next answer is read as its body
    buf = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + nxt)
    ans = _Answer()
    ans.feed(buf, False)
    assert ans.done and bytes(ans.body) == nxt[:5]


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_whatever_the_headers_say(status):
    for framing in (b"Content-Length: 100\r\n", b"Transfer-Encoding: chunked\r\n", b""):
        nxt = b"HTTP/1.1 200 OK\r\n\r\n"
        buf = bytearray(b"HTTP/1.1 %d X\r\n" % status + framing + b"\r\n" + nxt)
        ans = _Answer()
        ans.feed(buf, False)
        assert ans.done and ans.status == status and ans.body == b"" and bytes(buf) == nxt
        assert not ans.close


def test_close_delimited_answer_grows_until_the_close():
    ans, buf = _Answer(), bytearray(b"HTTP/1.1 200 OK\r\nX: y\r\n\r\nabc")
    ans.feed(buf, False)
    assert not ans.done and ans.close and ans.length == -1 and bytes(ans.body) == b"abc"
    buf += b"def"
    ans.feed(buf, False)
    assert not ans.done and bytes(ans.body) == b"abcdef" and buf == b""


def test_parse_head_reports_http10_and_keeps_header_order_and_case():
    st, h10, h = parse_head(b"HTTP/1.0 404 Not Found\r\nX-A: 1\r\nx-a:2\r\nSet-Cookie:\t a=b; c \r\n")
    assert (st, h10) == (404, True)
    assert list(h.items()) == [("X-A", "1"), ("x-a", "2"), ("Set-Cookie", "a=b; c")]
    assert h.getall("X-a") == ["1", "2"] and isinstance(h, CIMultiDict)
    st, h10, h = parse_head(b"HTTP/1.1 200")
    assert (st, h10, len(h)) == (200, False, 0)
    # HTTP/1.0 closes even when it says keep-alive
    ans = _Answer()
    buf = bytearray(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
    ans.feed(buf, False)
    assert ans.done and ans.close


# ==================================================================================================
# 2. malformed answers
# ==================================================================================================

def raises_value_error(data: bytes, rng: random.Random, hows=("whole", "bytes", "random")) -> None:
    for how in hows:
        with pytest.raises(ValueError):
            ans, buf = _Answer(), bytearray()
            for p in split(rng, data, how):
                buf += p
                ans.feed(buf, False)
                assert not ans.done, "accepted %r" % data[:120]


BAD_STATUS = [b"HTTP/2 200 OK", b"HTTP/1.1 20 OK", b"HTTP/1.1 2000 OK", b"HTTP/1.1 abc OK", b"ICY 200 OK",
              b"HTTP/1.1", b"", b"http/1.1 200 OK", b"HTTP/1.1  200 OK", b"HTTP/1.1 +20 OK", b"HTTP/1.1 2 0 OK",
              b"HTTP/1.1 \xb2\xb3\xb9 OK", b"\x00HTTP/1.1 200 OK", b" HTTP/1.1 200 OK"]
BAD_HEADER = [b"Foo bar", b"Foo : bar", b": x", b" folded: continuation", b"\tX: y", b"NoColonAtAll"]
BAD_LENGTH = ["abc", "-1", "1.5", "", "0x10", "+5", "5, 5", "1 2", "\xb2", "1\xb2", str(_MAX_BODY + 1), "9" * 5000]
BAD_CHUNKS = [b"zz\r\n", b"\r\nabc", b";ext\r\n", b"g\r\n", b"5\r\nhelloXX\r\n0\r\n\r\n", b"5\r\nhello\n0\r\n\r\n",
              b"5\r\nhelloXX0\r\n\r\n", b"1" * 2000, b"%x\r\n" % (_MAX_BODY + 1), b"5 5\r\nhello\r\n", b"\xff\r\n"]


@pytest.mark.parametrize("line", BAD_STATUS)
def test_bad_status_line_raises(line):
    raises_value_error(line + b"\r\nContent-Length: 0\r\n\r\n", random.Random(1))
    with pytest.raises(ValueError):
        parse_head(line)


@pytest.mark.parametrize("line", BAD_HEADER)
def test_header_line_without_a_proper_colon_raises(line):
    raises_value_error(b"HTTP/1.1 200 OK\r\nA: b\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n", random.Random(2))


@pytest.mark.parametrize("value", BAD_LENGTH)
def test_bad_content_length_raises(value):
    raises_value_error(b"HTTP/1.1 200 OK\r\nContent-Length: " + value.encode("latin-1") + b"\r\n\r\nhello",
                       random.Random(3))


@pytest.mark.parametrize("chunks", BAD_CHUNKS)
def test_bad_chunk_raises(chunks):
    raises_value_error(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks, random.Random(4))


def test_oversize_head_raises():
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (_MAX_HEAD + 10)
    raises_value_error(head, random.Random(5), ("whole", "random"))
    with pytest.raises(ValueError):                     # in 1 KB pieces
        feed_pieces([head[i:i + 1024] for i in range(0, len(head), 1024)])
    # a head just under the limit is fine
    ok = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (_MAX_HEAD - 100) + b"\r\nContent-Length: 0\r\n\r\n"
    ans, buf = feed_pieces(split(random.Random(6), ok, "random"))
    assert ans.done and len(ans.headers["x-big"]) == _MAX_HEAD - 100


def test_oversize_body_raises():
    rng = random.Random(7)
    half = _MAX_BODY // 2
    up_to_close = b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (_MAX_BODY + 1)
    chunks = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % half + b"x" * half
              + b"\r\n%x\r\n" % (half + 1))
    for data in (up_to_close, chunks):
        with pytest.raises(ValueError, match="body over"):
            feed_pieces(split(rng, data, "random"))
    # exactly the limit is fine
    ans, buf = feed_pieces([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % _MAX_BODY + b"y" * _MAX_BODY])
    assert ans.done and len(ans.body) == _MAX_BODY


def test_oversize_head_raises_even_when_it_arrives_whole():
    head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (2 * _MAX_HEAD) + b"\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ValueError):
        feed_pieces([head])


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"0_5", b"-0"])
def test_chunk_size_is_plain_hex(size):
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    with pytest.raises(ValueError):
        feed_pieces([data])


def test_many_interim_answers_raise_nothing_but_value_error():
    data = b"HTTP/1.1 100 C\r\n\r\n" * 3000 + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    try:
        ans, buf = feed_pieces([data])
        assert ans.done and ans.status == 200
    except ValueError:
        pass


FRAGMENTS = [b"HTTP/1.1 ", b"HTTP/1.0 ", b"200", b"204", b"304", b"100", b" OK", b"\r\n", b"\r\n\r\n", b"\n", b"\r",
             b"Content-Length: ", b"content-length:", b"Transfer-Encoding: chunked", b"Connection: close", b": ",
             b":", b" ", b";", b"0", b"5", b"a", b"F", b"10", b"-", b"hello", b"\x00", b"\xff", b"0\r\n\r\n", b"X-A: b"]


def _fuzz_one(rng: random.Random, data: bytes) -> None:
    head_request = rng.random() < 0.2
    pieces = split(rng, data, rng.choice(["whole", "random", "random", "bytes"] if len(data) < 400
                                         else ["whole", "random"]))
    total = 0
    try:
        ans, buf = _Answer(), bytearray()
        for p in pieces:
            buf += p
            total += len(p)
            if not ans.done:
                ans.feed(buf, head_request)
            # invariants whatever the input
            assert len(buf) + len(ans.body) <= total
            if ans.done:
                assert ans.headers is not None and 0 <= ans.status <= 999 and not 100 <= ans.status < 200
                if not ans.chunked:
                    assert len(ans.body) == ans.length
    except ValueError:
        pass


def test_random_garbage_raises_nothing_but_value_error():
    rng = random.Random(42)
    for _ in range(1500):
        n = rng.choice([0, 1, 5, rng.randint(0, 64), rng.randint(0, 600)])
        _fuzz_one(rng, bytes(rng.getrandbits(8) for _ in range(n)))
    for _ in range(1500):                              # protocol-looking garbage gets further in
        _fuzz_one(rng, b"".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 40))))
    for _ in range(300):
        try:
            st, _h10, h = parse_head(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 80))))
            assert 0 <= st <= 999 and isinstance(h, CIMultiDict)
        except ValueError:
            pass


def test_mutated_valid_answers_raise_nothing_but_value_error():
    rng = random.Random(43)
    for _ in range(1500):
        g = make_answer(rng)
        data = bytearray(g.wire + g.trailing)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            i = rng.randrange(len(data) + 1)
            if op == 0 and i < len(data):
                data[i] = rng.getrandbits(8)                    # flip
            elif op == 1:
                data[i:i] = rng.choice(FRAGMENTS)               # insert
            elif op == 2:
                del data[i:i + rng.randint(1, 8)]               # delete
            elif op == 3:
                data[i:i] = data[i:i + rng.randint(1, 30)]      # duplicate
            else:
                data = data[:i]                                 # truncate
        _fuzz_one(rng, bytes(data))


# ==================================================================================================
# 3. OrderConnection over real sockets
# ==================================================================================================

@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Like asyncio.run / uvloop.run, but the teardown is bounded too: tasks still running after the
    test are cancelled and given 2 s; one that does not end fails the test instead of hanging it."""
    def go(coro_fn: Callable, timeout: float = 8.0):
        loop = asyncio.new_event_loop() if request.param == "asyncio" else uvloop.new_event_loop()
        ok = False
        try:
            out = loop.run_until_complete(asyncio.wait_for(coro_fn(), timeout))
            ok = True
            return out
        finally:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=2.0))
            stuck = [t for t in tasks if not t.done()]
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            if ok:
                assert not stuck, "tasks still running after the test and a cancel: %r" % stuck
    return go


async def until(pred: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> float:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s not met within %.1f s" % (what, timeout))
        await asyncio.sleep(0.005)
    return time.monotonic() - t0


@contextlib.asynccontextmanager
async def opened(url: str, **kw):
    """An OrderConnection, started; always closed (a task left running would outlive the loop)."""
    c = OrderConnection(url, **kw)
    try:
        c.started = await c.start()
        yield c
    finally:
        await asyncio.wait_for(c.close(), 2.0)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """aiohttp on 127.0.0.1: every request is logged with the client's address (one per TCP connection)."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.log: list[tuple[str, str, tuple, dict, bytes]] = []
        self.release: Optional[asyncio.Event] = None
        self.runner: Optional[web.AppRunner] = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        body = await request.read()
        self.log.append((request.method, request.path_qs, peer, dict(request.headers), body))
        path = request.path
        if path == "/close":
            r = web.Response(body=b"bye")
            r.force_close()
            return r
        if path == "/drop":
            request.transport.close()
            raise ConnectionResetError("dropped on purpose")
        if path == "/slow":
            await asyncio.wait_for(self.release.wait(), 5.0)
            return web.Response(body=b"late")
        if path == "/ping":
            return web.Response(body=b"pong")
        if path == "/nocontent":
            return web.Response(status=204)
        if path == "/chunked":
            r = web.StreamResponse(status=202, headers={"X-Kind": "chunked"})
            r.enable_chunked_encoding()
            await r.prepare(request)
            for piece in (b"ab", b"", b"c" * 3000, b"\r\n0\r\n\r\n"):
                await r.write(piece)
                await asyncio.sleep(0.005)
            await r.write_eof()
            return r
        return web.Response(status=200, body=b"%s %s %s" % (request.method.encode(), request.path_qs.encode(), body),
                            headers={"X-Seq": str(len(self.log))})

    tls = None          # an ssl.SSLContext: serve https

    async def __aenter__(self) -> "Server":
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.tls)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.release.set()
        await self.runner.cleanup()

    def peers(self) -> set:
        return {p for _, _, p, _, _ in self.log}

    def hits(self, path: str) -> int:
        return sum(1 for _, pq, _, _, _ in self.log if pq.split("?")[0] == path)


def test_sequential_requests_reuse_one_connection(run):
    async def main():
        async with Server() as srv:
            c = OrderConnection(srv.url, name="t", headers=[("X-Api-Key", "k1")])
            assert not c.ready and not c.connected
            try:
                assert await c.start() is True
                assert c.ready and c.connected and c.connects == 1
                for i in range(25):
                    method = ("GET", "POST", "DELETE", "PUT")[i % 4]
                    body = b'{"i":%d}' % i if method in ("POST", "PUT") else b""
                    fut = c.send(method, "/api/order?i=%d&s=a%%20b" % i, {"X-Sig": "s%d" % i}, body)
                    assert isinstance(fut, asyncio.Future) and not fut.done() and not c.ready
                    status, headers, rbody = await asyncio.wait_for(fut, 2.0)
                    assert status == 200 and rbody == b"%s /api/order?i=%d&s=a%%20b %s" % (method.encode(), i, body)
                    assert headers["x-seq"] == str(i + 1) and isinstance(headers, CIMultiDict)
                    assert c.ready
            finally:
                await c.close()
            return srv, c
    srv, c = run(main)
    assert len(srv.log) == 25 and len(srv.peers()) == 1               # one TCP connection for all
    assert c.connects == 1 and c.losses == 0 and c.requests == 25
    for i, (method, pq, _, hdrs, _) in enumerate(srv.log):
        assert hdrs["Host"] == "127.0.0.1:%d" % srv.port
        assert hdrs["X-Api-Key"] == "k1" and hdrs["X-Sig"] == "s%d" % i and hdrs["User-Agent"] == "cexnode"


def test_send_writes_in_the_callers_call_exactly_the_request_bytes(run):
    """A plain blocking socket as the server: the request is readable before the loop runs again."""
    async def main():
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4)
        lsock.settimeout(2.0)
        port = lsock.getsockname()[1]
        try:
            async with opened("http://127.0.0.1:%d" % port, headers=[("X-K", "v")]) as c:
                assert c.started
                s, _ = lsock.accept()
                s.settimeout(2.0)
                cases = [("POST", "/o?a=1", {"X-Sig": "abc"}, b'{"a":1}', b"Content-Length: 7\r\n"),
                         ("GET", "/t", None, b"", None), ("DELETE", "/o/1", {}, b"", None),
                         ("PUT", "/o", None, b"", b"Content-Length: 0\r\n")]
                for method, target, hdrs, body, cl in cases:
                    expect = c.request_bytes(method, target, hdrs, body)
                    fut = c.send(method, target, hdrs, body)
                    got = b""
                    while len(got) < len(expect):              # blocking: the loop does not run meanwhile
                        got += s.recv(65536)
                    assert got == expect
                    assert got.startswith(b"%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                          % (method.encode(), target.encode(), port))
                    assert b"\r\nX-K: v\r\n" in got and got.endswith(b"\r\n\r\n" + body)
                    if cl is None:
                        assert b"Content-Length" not in got
                    else:
                        assert cl in got
                    if hdrs:
                        assert b"\r\nX-Sig: abc\r\n" in got
                    assert not fut.done()
                    s.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
                    assert await asyncio.wait_for(fut, 2.0) == (201, CIMultiDict({"Content-Length": "2"}), b"ok")
                s.close()
        finally:
            lsock.close()
    run(main)


def test_send_while_in_flight_is_busy_and_writes_nothing(run):
    async def main():
        async with Server() as srv:
            c = OrderConnection(srv.url)
            with pytest.raises(ConnectionBusy):            # not started: not connected
                c.send("GET", "/x")
            assert c.busy == 1
            async with opened(srv.url) as c:
                fut = c.send("POST", "/slow", body=b"1")
                assert not c.ready
                await until(lambda: srv.hits("/slow") == 1, what="slow request on the server")
                for _ in range(3):
                    with pytest.raises(ConnectionBusy):
                        c.send("POST", "/other", body=b"2")
                assert c.busy == 3 and c.requests == 1
                srv.release.set()
                assert (await asyncio.wait_for(fut, 2.0))[2] == b"late"
                # the stream is clean: nothing of the refused requests reached the server
                st, _, body = await asyncio.wait_for(c.send("GET", "/after"), 2.0)
                assert (st, body) == (200, b"GET /after ")
                await asyncio.sleep(0.05)
            return srv, c
    srv, c = run(main)
    assert [pq for _, pq, _, _, _ in srv.log] == ["/slow", "/after"] and len(srv.peers()) == 1
    assert c.connects == 1


def test_connection_close_answer_is_delivered_then_reconnects(run):
    async def main():
        async with Server() as srv, opened(srv.url) as c:
            fut = c.send("GET", "/close")
            status, headers, body = await asyncio.wait_for(fut, 2.0)
            assert (status, body) == (200, b"bye") and headers["Connection"].lower() == "close"
            assert not c.ready
            waited = await until(lambda: c.ready, 2.0, "reconnect")
            assert c.connects == 2
            status, headers, body = await asyncio.wait_for(c.send("GET", "/again"), 2.0)
            assert (status, body) == (200, b"GET /again ")
            return srv, waited
    srv, waited = run(main)
    assert len(srv.peers()) == 2 and waited < 1.0


def test_server_drop_without_answer_fails_the_future_and_reconnects(run):
    async def main():
        async with Server() as srv, opened(srv.url) as c:
            fut = c.send("POST", "/drop", body=b"{}")
            with pytest.raises(ConnectionLostError) as ei:
                await asyncio.wait_for(fut, 2.0)
            assert isinstance(ei.value, OSError)
            await until(lambda: c.ready, 2.0, "reconnect")
            assert c.losses == 1 and c.connects == 2
            assert (await asyncio.wait_for(c.send("GET", "/ok"), 2.0))[2] == b"GET /ok "
            return srv
    srv = run(main)
    assert len(srv.peers()) == 2


def test_abandon_fails_the_pending_future_and_reconnects(run):
    async def main():
        async with Server() as srv, opened(srv.url) as c:
            fut = c.send("POST", "/slow", body=b"order")
            await until(lambda: srv.hits("/slow") == 1, what="slow request on the server")
            c.abandon("caller timed out")
            assert fut.done() and isinstance(fut.exception(), ConnectionLostError)
            assert "caller timed out" in str(fut.exception())
            await until(lambda: c.ready, 2.0, "reconnect")
            assert c.connects == 2 and c.losses == 1
            srv.release.set()                                    # the late answer goes to the old connection
            st, _, body = await asyncio.wait_for(c.send("GET", "/next"), 2.0)
            assert (st, body) == (200, b"GET /next ")
            c.abandon("nothing in flight")                       # idle: reconnects all the same
            await until(lambda: c.ready, 2.0, "second reconnect")
            assert c.connects == 3
            assert (await asyncio.wait_for(c.send("GET", "/third"), 2.0))[2] == b"GET /third "
            return srv
    srv = run(main)
    assert len(srv.peers()) == 3 and srv.hits("/next") == 1 and srv.hits("/third") == 1


def test_keepalive_pings_while_idle_and_not_while_busy(run):
    async def main():
        async with Server() as srv, opened(srv.url, keepalive_s=0.2, ping_target="/ping") as c:
            # requests every 50 ms keep it in use: no ping
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.5:
                await asyncio.wait_for(c.send("GET", "/work"), 2.0)
                await asyncio.sleep(0.05)
            assert srv.hits("/ping") == 0 and c.pings == 0
            await asyncio.sleep(0.8)                              # idle: about one ping per 0.2 s
            pings, sent = srv.hits("/ping"), c.pings
            return srv, c, pings, sent
    srv, c, pings, sent = run(main)
    assert 2 <= pings <= 5 and sent in (pings, pings + 1)
    assert all(m == "GET" for m, pq, _, _, _ in srv.log if pq == "/ping")
    assert len(srv.peers()) == 1 and c.connects == 1


def test_keepalive_refused_by_admit_sends_nothing(run):
    calls = []

    async def main():
        async with Server() as srv, opened(srv.url, keepalive_s=0.1, ping_target="/ping",
                                           admit=lambda: calls.append(time.monotonic()) is not None) as c:
            await asyncio.sleep(0.6)                              # admit always says no (append -> None)
            assert c.ready
            return srv, c
    srv, c = run(main)
    assert srv.hits("/ping") == 0 and c.pings == 0 and len(srv.log) == 0
    assert 3 <= len(calls) <= 8                               # asked once per interval, not in a busy loop


def test_close_fails_the_pending_request_and_stops_reconnecting(run):
    async def main():
        async with Server() as srv, opened(srv.url, keepalive_s=0.1, ping_target="/ping") as c:
            fut = c.send("POST", "/slow", body=b"x")
            await until(lambda: srv.hits("/slow") == 1, what="slow request on the server")
            await asyncio.wait_for(c.close(), 2.0)
            assert fut.done() and isinstance(fut.exception(), ConnectionLostError)
            assert not c.connected and not c.ready
            with pytest.raises(ConnectionBusy):
                c.send("GET", "/x")
            await asyncio.sleep(0.5)                              # no reconnect, no ping
            assert not c.connected and c.connects == 1
            return srv
    srv = run(main)
    assert len(srv.peers()) == 1 and srv.hits("/ping") == 0


def test_start_without_a_server_then_connects_when_it_appears(run):
    async def main():
        port = free_port()
        async with opened("http://127.0.0.1:%d" % port, connect_timeout_s=1.0) as c:
            assert c.started is False and not c.connected
            with pytest.raises(ConnectionBusy):
                c.send("GET", "/x")
            await asyncio.sleep(0.1)
            async with Server(port):
                await until(lambda: c.ready, 3.0, "connect once the server listens")
                assert (await asyncio.wait_for(c.send("GET", "/hi"), 2.0))[2] == b"GET /hi "
                await c.close()
    run(main)


def test_head_204_and_chunked_answers_from_aiohttp_keep_the_connection(run):
    async def main():
        async with Server() as srv, opened(srv.url) as c:
            st, h, body = await asyncio.wait_for(c.send("HEAD", "/thing"), 2.0)
            assert st == 200 and body == b"" and int(h["Content-Length"]) == len(b"HEAD /thing ")
            st, h, body = await asyncio.wait_for(c.send("DELETE", "/nocontent"), 2.0)
            assert (st, body) == (204, b"")
            st, h, body = await asyncio.wait_for(c.send("GET", "/chunked"), 2.0)
            assert st == 202 and h["X-Kind"] == "chunked" and "chunked" in h["Transfer-Encoding"]
            assert body == b"ab" + b"c" * 3000 + b"\r\n0\r\n\r\n"
            st, h, body = await asyncio.wait_for(c.send("GET", "/last"), 2.0)
            assert body == b"GET /last "
            return srv, c
    srv, c = run(main)
    assert len(srv.peers()) == 1 and c.connects == 1 and len(srv.log) == 4


class RawServer:
    """asyncio.start_server: answers each request with the next scripted answer, written in the
    scripted pieces with a pause between them; ``close_after`` closes the connection after it.
    Without a script, requests are read and never answered."""

    def __init__(self) -> None:
        self.script: list[tuple[list[bytes], bool]] = []    # (pieces, close_after)
        self.requests: list[bytes] = []
        self.connections = 0
        self.pause = 0.005
        self.server = None
        self.writers: list = []
        self.unsolicited: Optional[bytes] = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            if self.unsolicited is not None and self.connections == 1:
                await asyncio.sleep(0.05)
                writer.write(self.unsolicited)
                await writer.drain()
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                if not self.script:
                    continue
                pieces, close_after = self.script.pop(0)
                for p in pieces:
                    writer.write(p)
                    await writer.drain()
                    await asyncio.sleep(self.pause)
                if close_after:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> "RawServer":
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.url = "http://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        for w in self.writers:
            w.close()
        await asyncio.wait_for(self.server.wait_closed(), 2.0)


def test_chunked_answer_in_small_delayed_writes_over_a_socket(run):
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"7;ext=1\r\n{\"id\": \r\n" b"A\r\n\"12345678\"\r\n" b"1\r\n}\r\n" b"0\r\nX-Trailer: t\r\n\r\n")
    cuts = [5, 17, 40, 81, 83, 84, 86, 90, 100, 101, 104, 105, 110, len(answer) - 3, len(answer) - 1]
    pieces = [answer[a:b] for a, b in zip([0] + cuts, cuts + [len(answer)])]

    async def main():
        async with RawServer() as srv, opened(srv.url) as c:
            srv.script = [(pieces, False), ([answer], False), ([answer[:1], answer[1:]], False)]
            for i in range(3):
                st, h, body = await asyncio.wait_for(c.send("POST", "/order", body=b"{}"), 2.0)
                assert st == 200 and body == b'{"id": "12345678"}' and h["content-type"] == "application/json"
                assert "X-Trailer" not in h and c.ready
            return srv, c
    srv, c = run(main)
    assert srv.connections == 1 and c.connects == 1 and len(srv.requests) == 3


def test_generated_answers_in_random_pieces_over_a_socket(run):
    rng = random.Random(77)
    gens = [make_answer(rng) for _ in range(24)]
    while gens[-1].close:                                 # the last one keeps it: the count is exact
        gens[-1] = make_answer(rng)

    async def main():
        async with RawServer() as srv:
            srv.pause = 0.001
            for g in gens:
                srv.script.append((split(rng, g.wire, rng.choice(["whole", "random", "random"])), g.close))
            async with opened(srv.url) as c:
                for i, g in enumerate(gens):
                    await until(lambda: c.ready, 3.0, "ready for answer %d" % i)
                    st, h, body = await asyncio.wait_for(c.send("GET", "/g%d" % i), 3.0)
                    assert st == g.status and list(h.items()) == g.headers and body == g.body, i
                    if g.close:
                        assert not c.ready                    # closed after it, reopened in the background
            return srv, c
    srv, c = run(main, timeout=15.0)
    closes = sum(1 for g in gens if g.close)
    assert 0 < closes < len(gens)
    assert c.connects == srv.connections == 1 + closes


def test_interim_answer_then_close_delimited_body_over_a_socket(run):
    async def main():
        async with RawServer() as srv, opened(srv.url) as c:
            srv.script = [([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: 1\r\n\r\n", b"hello ",
                            b"world"], True),
                          ([b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"], False)]
            st, h, body = await asyncio.wait_for(c.send("GET", "/a"), 2.0)
            assert (st, list(h.items()), body) == (200, [("X", "1")], b"hello world")
            await until(lambda: c.ready, 2.0, "reconnect after the close")
            assert (await asyncio.wait_for(c.send("GET", "/b"), 2.0))[2] == b"abc"
            return srv, c
    srv, c = run(main)
    assert srv.connections == 2 and c.connects == 2


def test_unreadable_answer_or_extra_bytes_drop_the_connection(run):
    async def main():
        async with RawServer() as srv, opened(srv.url) as c:
            srv.script = [([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"], False),
                          ([b"SPDY/3 200 OK\r\n\r\n"], False),
                          ([b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"], True),
                          ([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"], False)]
            # an answer followed by more bytes: the answer is delivered, the connection is not reused
            assert (await asyncio.wait_for(c.send("GET", "/1"), 2.0))[2] == b"ok"
            assert not c.ready
            await until(lambda: c.ready, 2.0, "reconnect 1")
            with pytest.raises(ConnectionLostError, match="unreadable"):
                await asyncio.wait_for(c.send("GET", "/2"), 2.0)
            await until(lambda: c.ready, 2.0, "reconnect 2")
            with pytest.raises(ConnectionLostError):          # body cut short by the close
                await asyncio.wait_for(c.send("GET", "/3"), 2.0)
            await until(lambda: c.ready, 2.0, "reconnect 3")
            assert (await asyncio.wait_for(c.send("GET", "/4"), 2.0))[2] == b"z"
            return srv, c
    srv, c = run(main)
    assert srv.connections == 4 and c.connects == 4


def test_data_without_a_request_drops_the_connection(run):
    async def main():
        async with RawServer() as srv:
            srv.unsolicited = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n"
            srv.script = [([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny"], False)]
            async with opened(srv.url) as c:
                await until(lambda: c.connects == 2 and c.ready, 3.0, "reconnect after unsolicited data")
                assert (await asyncio.wait_for(c.send("GET", "/x"), 2.0))[2] == b"y"
            return srv
    srv = run(main)
    assert srv.connections == 2


def test_unanswered_keepalive_request_reopens_the_connection(run):
    async def main():
        async with RawServer() as srv, opened(srv.url, keepalive_s=0.1, ping_target="/ping",
                                              connect_timeout_s=0.3) as c:
            await until(lambda: srv.requests != [], 1.0, "the ping")
            # unanswered for connect_timeout_s: the connection is given up and opened again
            await until(lambda: srv.connections >= 2 and c.ready, 1.2, "a fresh connection after the ping")
    run(main)


def test_keeper_task_ends_when_cancelled_right_after_a_loss(run):
    async def main():
        async with Server() as srv, opened(srv.url) as c:
            await asyncio.sleep(0.05)
            keeper = c._task                   # what asyncio.run cancels at exit when close() was not called
            c.abandon("lost")
            keeper.cancel()
            done, _ = await asyncio.wait([keeper], timeout=0.5)
            assert done, "the cancelled keeper task is still running (connects=%d)" % c.connects
    run(main)


# -- TLS (production venues are https) ----------------------------------------------------------------

TLS_DIR = pathlib.Path(__file__).resolve().parents[1] / "resources" / "tls"


def _tls_server() -> "Server":
    import ssl

    srv = Server()
    srv.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    srv.tls.load_cert_chain(TLS_DIR / "server.pem", TLS_DIR / "server.key")
    return srv


def test_https_requests_reuse_one_verified_tls_connection(run):
    """Over TLS (certificate verified against the test CA, SNI/IP 127.0.0.1): answers read through
    the TLS transport, every request on one connection, and the chunked answer too."""
    import ssl

    client = ssl.create_default_context(cafile=str(TLS_DIR / "ca.pem"))

    async def main():
        async with _tls_server() as srv, opened(srv.url, ssl_context=client) as c:
            assert c.started and c.tls and c.ready
            for i in range(5):
                st, hdrs, body = await asyncio.wait_for(c.send("POST", "/api/v3/order?i=%d" % i, body=b"x"), 2.0)
                assert st == 200 and body == b"POST /api/v3/order?i=%d x" % i
            st, hdrs, body = await asyncio.wait_for(c.send("GET", "/chunked"), 2.0)
            assert st == 202 and body == b"ab" + b"c" * 3000 + b"\r\n0\r\n\r\n"
            assert len(srv.peers()) == 1 and c.connects == 1 and c.losses == 0
    run(main)


def test_https_with_an_untrusted_certificate_is_never_used(run):
    """The system's default context refuses the test CA: nothing is connected, send() refuses
    (the REST manager then uses its pool, which verifies the same way)."""
    async def main():
        async with _tls_server() as srv, opened(srv.url, connect_timeout_s=1.0) as c:
            assert c.started is False and not c.connected and not c.ready
            with pytest.raises(ConnectionBusy):
                c.send("GET", "/x")
            assert srv.log == []
    run(main)
