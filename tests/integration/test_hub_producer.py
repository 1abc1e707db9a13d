"""The pipeline status hub with Debian's python-socketio 5.7: examples/producer.py run against a
fresh `ragpulse serve`, watched by a python-socketio viewer, checked over HTTP; and a
python-socketio producer's acks for accepted and refused events.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_hub_producer.py
Every wait is bounded. See conftest.py for the server helper and environment variables.
"""
import atexit
import json
import queue
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest
import requests
import socketio

from conftest import REPO_DIR, USE_REF, start_server

T = 5  # seconds, bound for every single wait
PRODUCER = os.path.join(REPO_DIR, 'examples', 'producer.py')
ID_RE = re.compile(r'^(\S+)\s.*\bid=(\d+)\s*$')

pytestmark = pytest.mark.skipif(USE_REF, reason='the hub exists only in ragpulse serve')


def get(srv, path):
    r = requests.get(srv.url + path, timeout=T)
    assert r.status_code == 200, f'GET {path}: {r.status_code} {r.text}'
    return r.json()


def run_producer(*args, timeout=30):
    return subprocess.run([sys.executable, PRODUCER, *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def printed_ids(out):
    """[(event type, id)] from the producer's output lines."""
    rows = []
    for line in out.splitlines():
        m = ID_RE.match(line)
        if m:
            rows.append((m.group(1), int(m.group(2))))
    return rows


class Viewer:
    """A python-socketio viewer: subscribes and records every event (hub heartbeats apart)."""

    def __init__(self, url, namespace, subscription):
        self.cond = threading.Condition()
        self.events = []
        self.sio = socketio.Client(reconnection=False)

        @self.sio.on('*', namespace=namespace)
        def any_event(name, data=None, *_offset):  # catch-all; recovery may append an offset
            if name in ('sync', 'snapshot') or (name in ('heartbeat', 'hub:heartbeat') and isinstance(data, dict) and data.get('source') == 'hub'):
                return  # the state on connecting to a type namespace, recovery's `sync`, the hub's heartbeat
            with self.cond:
                self.events.append((name, data))
                self.cond.notify_all()

        self.sio.connect(url, namespaces=[namespace], transports=['websocket'], wait_timeout=T)
        self.ack = self.sio.call('subscribe', subscription, namespace=namespace, timeout=T)

    def wait_for_id(self, event_id, timeout=T):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(isinstance(d, dict) and d.get('id') == event_id for _, d in self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f'timeout waiting for event {event_id}; got {self.events!r}')
                self.cond.wait(left)

    def close(self):
        self.sio.disconnect()


def store_args():
    """A store of its own for each server: memory, or a fresh SQLite file (RP_HUB_STORE=sqlite)."""
    if os.environ.get('RP_HUB_STORE') != 'sqlite':
        return ['--store', 'memory']
    d = tempfile.mkdtemp(prefix='rp-hub-test-')
    atexit.register(shutil.rmtree, d, True)
    return ['--store', 'sqlite:' + os.path.join(d, 'hub.db')]


def start_hub(args=()):
    return start_server(list(args) + store_args(), product=True)


@pytest.fixture
def hub():
    srv = start_hub()
    yield srv
    srv.stop()


def test_example_producer_reports_a_batch(hub):
    viewer = Viewer(hub.url, '/local_files', {})
    try:
        assert viewer.ack.get('ok') is True, viewer.ack
        assert viewer.ack['pipelines'] == []
        res = run_producer('--hub', hub.url)
        assert res.returncode == 0, f'producer failed ({res.returncode}):\n{res.stdout}\n{res.stderr}'
        rows = printed_ids(res.stdout)
        ids = [i for _, i in rows]
        # each event was acked with a fresh id, in order; nothing else was stored
        assert ids == list(range(1, len(ids) + 1)), res.stdout
        types = [t for t, _ in rows]
        assert types[0] == 'pipeline:online' and types[-1] == 'pipeline:offline'
        assert types.count('file:processing') == 3
        assert types.count('file:completed') == 2
        assert types.count('file:failed') == 1
        assert types.count('heartbeat') == 3
        assert 'file:progress' in types

        status = get(hub, '/api/rag-status')
        assert status['version'] == ids[-1]
        [p] = status['pipelines']
        assert p['id'] == 'example-local-1'
        assert p['type'] == 'local_files'
        assert p['status'] == 'offline'
        assert p['counters']['processed'] == 2
        assert p['counters']['failed'] == 1
        assert p['counters']['in_flight'] == 0
        assert p['counters']['chunks'] > 0
        assert p['files'] == []
        assert p['files_total'] == 3
        assert p['files_pending'] == 0
        assert p['message'] == 'batch done'
        assert [r['file_id'] for r in p['recent_completed']] == ['doc-1', 'doc-2']
        [failed] = p['recent_failed']
        assert failed['file_id'] == 'doc-3'
        assert failed['error']['kind'] == 'upstream'
        assert 'HTTP 503' in failed['error']['message']
        assert failed['error']['retryable'] is True

        # the viewer on the type namespace saw exactly the acked events, in order
        viewer.wait_for_id(ids[-1])
        assert [(n, d['id']) for n, d in viewer.events] == rows
        assert all(d['type'] == n for n, d in viewer.events)

        # the history and the failure groups agree
        hist = get(hub, '/api/events?pipeline=example-local-1&limit=1000')
        assert [e['id'] for e in hist['events']] == ids[::-1]
        groups = get(hub, '/api/failures?pipeline=example-local-1')['groups']
        assert len(groups) == 1 and groups[0]['count'] == 1 and groups[0]['kind'] == 'upstream'
    finally:
        viewer.close()


def test_example_producer_options_and_polling(hub):
    res = run_producer('--hub', hub.url, '--files', '5', '--transport', 'polling',
                       '--pipeline-id', 'ex-drive', '--pipeline-type', 'google_drive',
                       '--heartbeat-interval', '5')
    assert res.returncode == 0, f'{res.stdout}\n{res.stderr}'
    [p] = get(hub, '/api/rag-status')['pipelines']
    assert (p['id'], p['type'], p['status']) == ('ex-drive', 'google_drive', 'offline')
    assert p['counters']['processed'] == 4
    assert p['counters']['failed'] == 1
    assert p['heartbeat_interval'] == 5


def test_example_producer_help_and_unreachable_hub():
    res = run_producer('--help', timeout=10)
    assert res.returncode == 0
    assert 'http://127.0.0.1:8103' in res.stdout, 'the default --hub'
    # a port nobody listens on any more: a clear error, exit status 2, quickly
    srv = start_hub()
    url = srv.url
    srv.stop()
    t0 = time.monotonic()
    res = run_producer('--hub', url, '--timeout', '3', timeout=20)
    assert res.returncode == 2, f'{res.returncode}\n{res.stdout}\n{res.stderr}'
    assert 'cannot connect' in res.stderr
    assert time.monotonic() - t0 < 15


def test_python_socketio_producer_acks(hub):
    sio = socketio.Client(reconnection=False)
    sio.connect(hub.url, namespaces=['/pipeline'], transports=['websocket'], wait_timeout=T)
    try:
        base = {'pipeline_id': 'py-p', 'pipeline_type': 'local_files'}
        assert sio.call('pipeline:online', dict(base, heartbeat_interval=10), namespace='/pipeline', timeout=T) == {'id': 1}
        ack = sio.call('file:progress', dict(base, file={'id': 'f', 'name': 'f', 'progress': 1.5}),
                       namespace='/pipeline', timeout=T)
        assert ack.get('error') == 'invalid event', ack
        assert ack.get('field') == 'file.progress', ack
        assert isinstance(ack.get('rule'), str) and ack['rule']
        ack = sio.call('file:failed', dict(base, file={'id': 'f', 'name': 'f'}), namespace='/pipeline', timeout=T)
        assert ack.get('field') == 'file.error', ack
        assert get(hub, '/api/rag-status')['version'] == 1, 'refused events are not stored'
        assert sio.call('file:progress', dict(base, file={'id': 'f', 'name': 'f', 'progress': 0.5}),
                        namespace='/pipeline', timeout=T) == {'id': 2}
        # HTTP producer, same hub, same id sequence
        r = requests.post(hub.url + '/api/events', json=dict(base, type='file:completed', file={'id': 'f', 'name': 'f'}),
                          timeout=T)
        assert r.status_code == 200 and r.json() == {'id': 3}, r.text
        r = requests.post(hub.url + '/api/events', data='{"type":', headers={'Content-Type': 'application/json'},
                          timeout=T)
        assert r.status_code == 400 and 'malformed JSON' in r.json()['error'], r.text
        [p] = get(hub, '/api/rag-status')['pipelines']
        assert p['counters'] == {'processed': 1, 'failed': 0, 'in_flight': 0, 'chunks': 0}
    finally:
        sio.disconnect()


def test_long_poll_with_requests(hub):
    """A long-poll (?since=V&wait=10) from another thread returns once a producer emits."""
    v = get(hub, '/api/rag-status')['version']
    result = {}

    def poll():
        t0 = time.monotonic()
        with urllib.request.urlopen(f'{hub.url}/api/rag-status?since={v}&wait=10', timeout=12) as r:
            result['body'] = json.loads(r.read())
        result['elapsed'] = time.monotonic() - t0

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    time.sleep(0.3)  # time is the test: the long-poll is still held 300 ms later
    assert 'body' not in result, 'held while nothing changes'
    r = requests.post(hub.url + '/api/events', json={'type': 'heartbeat', 'pipeline_id': 'lp', 'pipeline_type': 'x'},
                      timeout=T)
    assert r.status_code == 200
    th.join(timeout=5)
    assert not th.is_alive(), 'the long-poll did not return after the event'
    assert [e['id'] for e in result['body']['events']] == [r.json()['id']]
    assert result['elapsed'] < 5


@pytest.mark.parametrize('recovery', [True, False], ids=['recovery-on', 'no-recovery'])
def test_python_viewer_handlers_and_the_recovery_offset(recovery):
    """Events arrive as Socket.IO events named by type, with the normalised event as argument.
    With connection-state recovery on (the default), the event id also arrives as a last string
    argument, so python-socketio handlers take *args; with --no-recovery a one-argument
    handler (def handler(event)) works, which is why recovery can be switched off."""
    srv = start_hub([] if recovery else ['--no-recovery'])
    got = queue.Queue()
    sio = socketio.Client(reconnection=False)

    if recovery:
        @sio.on('file:progress', namespace='/pipeline')
        def on_progress(*args):
            got.put(args)
    else:
        @sio.on('file:progress', namespace='/pipeline')
        def on_progress(event):
            got.put((event,))

    try:
        sio.connect(srv.url, namespaces=['/pipeline'], transports=['websocket'], wait_timeout=T)
        ack = sio.call('subscribe', {'pipeline_id': 'one-arg'}, namespace='/pipeline', timeout=T)
        assert ack.get('ok') is True, ack
        r = requests.post(srv.url + '/api/events', timeout=T, json={
            'type': 'file:progress', 'pipeline_id': 'one-arg', 'pipeline_type': 'local_files',
            'file': {'id': 'f', 'name': 'f', 'progress': 0.5}})
        assert r.status_code == 200, r.text
        args = got.get(timeout=3)
        event = args[0]
        assert event['id'] == r.json()['id'] and event['file']['progress'] == 0.5
        if recovery:
            assert args[1:] == (str(event['id']),), args
        else:
            assert len(args) == 1
    finally:
        sio.disconnect()
        srv.stop()


def _parse_page(n):
    """Fails the way an ingest step does: a nested call, a non-ASCII message."""
    def read_xref(offset):
        raise ValueError(f'could not read page {n}: «invalid xref» at offset {offset}')
    read_xref(n * 1024)


def test_python_producer_reports_a_real_traceback(hub):
    """A producer reporting a Python traceback (newlines, indentation, non-ASCII) keeps its
    file:failed: acked, stored and broadcast intact; a control character other than tab,
    newline and carriage return is refused with a reason that says so, and the stored one stays."""
    try:
        _parse_page(3)
    except ValueError:
        import traceback
        tb = traceback.format_exc()
    assert tb.startswith('Traceback (most recent call last):\n') and tb.count('\n') >= 5, tb
    viewer = Viewer(hub.url, '/pipeline', {'pipeline_id': 'py-tb'})
    sio = socketio.Client(reconnection=False)
    sio.connect(hub.url, namespaces=['/pipeline'], transports=['websocket'], wait_timeout=T)
    try:
        base = {'pipeline_id': 'py-tb', 'pipeline_type': 'local_files'}
        f = {'id': 'scan-3.pdf', 'name': 'inbox/scan-3.pdf'}
        assert 'id' in sio.call('file:processing', dict(base, file=f), namespace='/pipeline', timeout=T)
        ack = sio.call('file:failed', dict(base, message=tb, file=dict(f, error={
            'message': tb, 'kind': 'ValueError', 'retryable': False})), namespace='/pipeline', timeout=T)
        assert isinstance(ack.get('id'), int), f'the traceback was refused: {ack}'
        viewer.wait_for_id(ack['id'])
        [(_, live)] = [(n, d) for n, d in viewer.events if d.get('id') == ack['id']]
        assert live['file']['error']['message'] == tb
        assert live['message'] == tb
        [stored] = [e for e in get(hub, '/api/events?pipeline=py-tb&limit=100')['events'] if e['id'] == ack['id']]
        assert stored['file']['error']['message'] == tb
        [p] = get(hub, '/api/rag-status')['pipelines']
        assert p['recent_failed'][0]['error']['message'] == tb
        assert p['counters']['failed'] == 1

        # a colour escape is refused with its own rule; nothing else changes
        version = get(hub, '/api/rag-status')['version']
        bad = sio.call('file:failed', dict(base, file=dict(f, error='\x1b[31m' + tb)), namespace='/pipeline', timeout=T)
        assert bad.get('error') == 'invalid event', bad
        assert bad.get('field') == 'file.error', bad
        assert bad.get('rule') == 'must not contain control characters other than tab, newline and carriage return', bad
        assert get(hub, '/api/rag-status')['version'] == version
        [again] = [e for e in get(hub, '/api/events?pipeline=py-tb&limit=100')['events'] if e['id'] == ack['id']]
        assert again['file']['error']['message'] == tb
    finally:
        sio.disconnect()
        viewer.close()
