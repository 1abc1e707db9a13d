"""The ragpulse Python package's channel publishing (Pipeline.publish / publish_batch) against a
stand-in hub: a stdlib http.server in a thread that records every request and answers what the
test scripts (so the request the package makes, its retries and its errors are checked on their
own; the hub's real endpoint has its own tests).

Run: /usr/bin/python3 -m pytest -q tests/integration/test_sdk_publish.py
"""
import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sdk_helpers import free_port  # noqa: F401 (puts the package on sys.path)

import ragpulse


class Recorder:
    """A hub stand-in on 127.0.0.1. `script` is a list of answers used in turn (the last one
    repeats): (status, json body, extra headers) or "drop" (close the connection unanswered)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        self.times = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(n)
                rec.requests.append({'path': self.path, 'headers': dict(self.headers),
                                     'body': json.loads(body)})
                rec.times.append(time.monotonic())
                i = min(len(rec.requests), len(rec.script)) - 1
                answer = rec.script[i]
                if answer == 'drop':
                    self.close_connection = True
                    self.connection.close()
                    return
                status, obj, headers = answer if len(answer) == 3 else (*answer, {})
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(raw)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    made = []

    def make(*script):
        r = Recorder(script)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def ok(*offsets):
    return (200, {'ok': True, 'channel': 'x', 'offsets': list(offsets), 'offset': offsets[-1]})


def pipeline(url, **kw):
    return ragpulse.Pipeline('p1', hub=url, **kw)


def test_publish_posts_one_message_and_returns_its_offsets(recorder):
    hub = recorder(ok(7), ok(8), ok(9))
    p = pipeline(hub.url, token='tok-1')
    assert p.publish('chat:s1', {'text': 'hi é'}) == [7]
    q = hub.requests[0]
    assert q['path'] == '/api/channels/chat:s1'
    assert q['headers']['Content-Type'] == 'application/json'
    assert q['headers']['Authorization'] == 'Bearer tok-1'
    assert set(q['body']) == {'value', 'id'}
    assert q['body']['value'] == {'text': 'hi é'}
    assert 1 <= len(q['body']['id']) <= 128

    assert p.publish('crawl:demo', {'status': 'crawling'}, op='patch', key='progress',
                     ttl_ms=5000, idempotency_key='run-1-progress-3') == [8]
    assert hub.requests[1]['body'] == {'op': 'patch', 'key': 'progress', 'value': {'status': 'crawling'},
                                       'ttl_ms': 5000, 'id': 'run-1-progress-3'}
    assert p.publish('tasks:proj-7', op='delete', key='t1') == [9]
    body = hub.requests[2]['body']
    assert 'value' not in body and body['op'] == 'delete' and body['key'] == 't1'
    assert 'Authorization' in hub.requests[2]['headers']
    assert hub.requests[0]['body']['id'] != hub.requests[2]['body']['id'], 'one key per message'


def test_publish_batch_sends_messages_all_at_once_and_leaves_the_callers_dicts_alone(recorder):
    hub = recorder(ok(11, 12, 13))
    p = pipeline(hub.url)
    msgs = [{'value': 'a'}, {'value': 'b', 'id': 'mine'}, {'op': 'append', 'value': {'n': 3}}]
    assert p.publish_batch('logs:mcp-1', msgs) == [11, 12, 13]
    assert len(hub.requests) == 1
    q = hub.requests[0]
    assert q['path'] == '/api/channels/logs:mcp-1'
    assert 'Authorization' not in q['headers']
    sent = q['body']['messages']
    assert [m['value'] for m in sent] == ['a', 'b', {'n': 3}]
    assert sent[1]['id'] == 'mine'
    assert sent[0]['id'] and sent[2]['id'] and sent[0]['id'] != sent[2]['id']
    assert msgs == [{'value': 'a'}, {'value': 'b', 'id': 'mine'}, {'op': 'append', 'value': {'n': 3}}]


def test_retries_5xx_429_and_a_lost_answer_with_the_same_idempotency_key(recorder):
    hub = recorder((503, {'error': 'store unavailable'}), 'drop',
                   (429, {'error': 'rate'}, {'Retry-After': '0.3'}), ok(21))
    p = pipeline(hub.url)
    assert p.publish('chat:s1', 'x') == [21]
    assert len(hub.requests) == 4
    assert len({json.dumps(r['body'], sort_keys=True) for r in hub.requests}) == 1, 'the same body, key included'
    # Time is what this checks: the Retry-After of the 429 (0.3 s) was waited before the next try.
    assert hub.times[3] - hub.times[2] >= 0.29


def test_a_refusal_raises_at_once_with_the_hubs_words(recorder):
    hub = recorder((400, {'error': 'invalid message', 'field': 'messages[0].key', 'rule': 'required on a state channel'}),
                   (404, {'error': 'unknown channel', 'channel': 'nope:1'}),
                   (413, {'error': 'message too large', 'limit': 65536}),
                   (403, {'ok': False, 'error': 'forbidden', 'channel': 'chat:s1'}))
    p = pipeline(hub.url)
    with pytest.raises(ragpulse.PublishError) as e:
        p.publish('tasks:a', 1)
    assert (e.value.status, e.value.error, e.value.field, e.value.rule) == \
        (400, 'invalid message', 'messages[0].key', 'required on a state channel')
    assert 'messages[0].key' in str(e.value)
    for want in (404, 413, 403):
        with pytest.raises(ragpulse.PublishError) as e:
            p.publish_batch('chat:s1', [{'value': 1}])
        assert e.value.status == want
    assert e.value.body['channel'] == 'chat:s1'
    assert isinstance(e.value, ragpulse.RagpulseError)
    assert len(hub.requests) == 4, 'a refusal is not retried'


def test_gives_up_after_the_retry_budget(recorder):
    hub = recorder((503, {'error': 'store unavailable'}))
    p = pipeline(hub.url, flush_timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(ragpulse.PublishError) as e:
        p.publish('chat:s1', 'x')
    assert e.value.status == 503 and e.value.error == 'store unavailable'
    assert time.monotonic() - t0 < 5
    assert len(hub.requests) >= 2, 'retried before giving up'
    # Nothing listening at all: the same error, without a status.
    hub.close()
    with pytest.raises(ragpulse.PublishError) as e:
        pipeline(hub.url, flush_timeout=0.3).publish('chat:s1', 'x')
    assert e.value.status is None
    assert 'unreachable' in str(e.value)


def test_bad_names_and_messages_are_refused_locally(recorder):
    hub = recorder(ok(1))
    p = pipeline(hub.url)
    for bad in ('', 'chat s1', 'chat/x', 'x' * 129, 'é'):
        with pytest.raises(ValueError, match='invalid channel name'):
            p.publish(bad, 1)
    with pytest.raises(ValueError, match='op must be'):
        p.publish('chat:s1', 1, op='upsert')
    with pytest.raises(ValueError, match='ttl_ms'):
        p.publish('chat:s1', 1, ttl_ms=-1)
    with pytest.raises(ValueError, match='1..1000'):
        p.publish_batch('chat:s1', [])
    with pytest.raises(ValueError, match='1..1000'):
        p.publish_batch('chat:s1', [{'value': i} for i in range(1001)])
    with pytest.raises(ValueError, match='unknown field'):
        p.publish_batch('chat:s1', [{'value': 1, 'channel': 'x'}])
    with pytest.raises(ValueError, match='id must be'):
        p.publish('chat:s1', 1, idempotency_key='k' * 129)
    assert hub.requests == []
    assert p.publish('a' * 128, 1) == [1]


def test_async_pipeline_publishes_too(recorder):
    hub = recorder(ok(5), ok(6, 7))

    async def main():
        p = ragpulse.AsyncPipeline('p1', hub=hub.url)
        a = await p.publish('chat:s1', {'t': 1}, op='append')
        b = await p.publish_batch('chat:s1', [{'value': 1}, {'value': 2}])
        return a, b
    assert asyncio.run(main()) == ([5], [6, 7])
    assert hub.requests[0]['body']['op'] == 'append'
    assert len(hub.requests[1]['body']['messages']) == 2
