"""The ragpulse Python package (clients/python) against a real `ragpulse serve`: the block of
the README, track(), progress coalescing, refusals, the hub down and restarted, a lost ack
(idempotency keys), a producer killed mid-run, and the documents' PipelineStatus calls.

Run: RAGPULSE_BUILD_DIR=build-asan /usr/bin/python3 -m pytest -q tests/integration/test_sdk.py
Every wait is bounded and waits for a condition.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from conftest import REPO_DIR, USE_REF
from sdk_helpers import T, DropAnswerProxy, all_events, free_port, get, hub, start_hub, wait_for  # noqa: F401 (hub: a fixture)

import ragpulse
from ragpulse.compat import PipelineStatus

pytestmark = pytest.mark.skipif(USE_REF, reason='the hub exists only in ragpulse serve')




def types(events):
    return [e['type'] for e in events]


def keys(events):
    return [e['meta']['idempotency_key'] for e in events]


def post(url, body):
    req = urllib.request.Request(url + '/api/events', data=json.dumps(body).encode(), method='POST',
                                 headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=T) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_block_reports_in_order_and_rag_status_agrees(hub, tmp_path):
    with ragpulse.Pipeline('docs-1', 'local_files', hub=hub.url, queue=str(tmp_path / 'q'),
                           heartbeat_interval=600) as p:
        with p.file('a.pdf', name='a.pdf', size=1234) as f:
            f.progress(0.4, stage='chunk')
            f.chunks = 12
        with pytest.raises(ValueError):
            with p.file('b.pdf', name='b.pdf') as f:
                raise ValueError('cannot parse page 3')
    evs = all_events(hub.url, 'docs-1')
    assert types(evs) == ['pipeline:online', 'file:processing', 'file:progress', 'file:completed',
                          'file:processing', 'file:failed', 'pipeline:offline']
    assert evs[1]['file']['size'] == 1234
    assert evs[2]['file']['progress'] == 0.4 and evs[2]['file']['stage'] == 'chunk'
    assert evs[3]['file']['chunks'] == 12
    err = evs[5]['file']['error']
    assert err['kind'] == 'ValueError'
    first, _, tb = err['message'].partition('\n')
    assert first == 'cannot parse page 3'
    assert 'Traceback (most recent call last)' in tb and 'raise ValueError' in tb
    assert len(set(keys(evs))) == len(evs), 'every event carries its own key'
    [st] = get(hub.url, '/api/rag-status')['pipelines']
    assert (st['id'], st['status']) == ('docs-1', 'offline')
    assert st['counters']['processed'] == 1 and st['counters']['failed'] == 1
    assert st['counters']['chunks'] == 12 and st['counters']['in_flight'] == 0
    assert st['recent_failed'][0]['error']['kind'] == 'ValueError'


def test_an_exception_leaving_the_pipeline_sends_offline_and_is_reraised(hub, tmp_path):
    with pytest.raises(KeyError):
        with ragpulse.Pipeline('docs-x', hub=hub.url, queue=str(tmp_path / 'q')) as p:
            p.heartbeat()
            raise KeyError('boom')
    evs = all_events(hub.url, 'docs-x')
    assert types(evs) == ['pipeline:online', 'heartbeat', 'pipeline:offline']
    assert 'KeyError' in evs[-1]['message']


def test_defaults_come_from_the_environment(hub, tmp_path, monkeypatch):
    monkeypatch.setenv('RAGPULSE_HUB', hub.url)
    monkeypatch.setenv('RAG_PIPELINE_ID', 'from-env')
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    with ragpulse.Pipeline() as p:
        assert p.queue_path == str(tmp_path / 'ragpulse' / 'from-env.queue')
    assert types(all_events(hub.url, 'from-env')) == ['pipeline:online', 'pipeline:offline']


def test_track_100_items_3_raising_goes_on(hub, tmp_path):
    bad = {7, 50, 93}

    def ingest(n):
        if n in bad:
            raise RuntimeError(f'item {n} is broken')
        return n * 2

    with ragpulse.Pipeline('trk', hub=hub.url, queue=str(tmp_path / 'q')) as p:
        got = list(p.track(range(100), ingest, name=lambda n: f'doc-{n}.txt', on_error='continue'))
        # without fn: items completed as the loop moves on
        for doc in p.track(['x.txt', 'y.txt']):
            assert doc in ('x.txt', 'y.txt')
    assert got == [n * 2 for n in range(100) if n not in bad]
    evs = all_events(hub.url, 'trk')
    done = [e['file']['id'] for e in evs if e['type'] == 'file:completed']
    failed = [e for e in evs if e['type'] == 'file:failed']
    assert len(done) == 99 and done[-2:] == ['x.txt', 'y.txt']
    assert [e['file']['id'] for e in failed] == ['doc-7.txt', 'doc-50.txt', 'doc-93.txt']
    assert all(e['file']['error']['kind'] == 'RuntimeError' for e in failed)
    [st] = get(hub.url, '/api/rag-status')['pipelines']
    assert st['counters']['processed'] == 99 and st['counters']['failed'] == 3


def test_track_without_continue_reports_and_reraises(hub, tmp_path):
    with pytest.raises(RuntimeError):
        with ragpulse.Pipeline('trk2', hub=hub.url, queue=str(tmp_path / 'q')) as p:
            for n in p.track(range(5), name=str):
                if n == 2:
                    raise RuntimeError('two')
    evs = all_events(hub.url, 'trk2')
    assert [(e['type'], e['file']['id']) for e in evs if 'file' in e][-2:] == \
        [('file:processing', '2'), ('file:failed', '2')]
    assert types(evs)[-1] == 'pipeline:offline'


def test_a_bad_event_raises_at_once_with_field_and_rule(hub, tmp_path):
    with ragpulse.Pipeline('bad', hub=hub.url, queue=str(tmp_path / 'q')) as p:
        with p.file('f', name='f') as f:
            with pytest.raises(ragpulse.EventRefused) as ei:
                f.progress(2.0)
            assert ei.value.field == 'file.progress' and 'between' in ei.value.rule
    # the hub's own answer, with the local check off
    with pytest.raises(ragpulse.EventRefused) as ei:
        with ragpulse.Pipeline('bad2', hub=hub.url, queue=str(tmp_path / 'q2'), validate=False) as p:
            p.emit('file:progress', file={'id': 'f', 'name': 'f', 'progress': 2.0})
            p.flush(T)
    assert ei.value.field == 'file.progress' and ei.value.status == 400 and ei.value.rule
    evs = all_events(hub.url, 'bad2')
    assert types(evs) == ['pipeline:online', 'pipeline:offline'], 'the good events are all there'
    assert types(all_events(hub.url, 'bad')) == ['pipeline:online', 'file:processing',
                                                  'file:completed', 'pipeline:offline']


def test_progress_is_coalesced_and_the_last_values_are_exact(hub, tmp_path):
    interval = 0.1
    with ragpulse.Pipeline('coal', hub=hub.url, queue=str(tmp_path / 'q'),
                           progress_interval=interval) as p:
        files = [p.file(f'f{i}', name=f'f{i}') for i in range(10)]
        for f in files:
            f.start()
        t0 = time.monotonic()
        for n in range(1, 10_001):  # 10,000 calls over 10 files
            files[n % 10].progress(n / 10_000)
        elapsed = time.monotonic() - t0
        for f in files:
            f.complete()
    evs = all_events(hub.url, 'coal')
    for i, f in enumerate(files):
        prog = [e['file']['progress'] for e in evs if e['type'] == 'file:progress' and e['file']['id'] == f.id]
        # bounded by the interval: one at once, one per interval after, the last one
        assert 1 <= len(prog) <= elapsed / interval + 2, (len(prog), elapsed)
        last = max(n for n in range(1, 10_001) if n % 10 == i) / 10_000
        assert prog[-1] == last
        seq = [e['type'] for e in evs if e.get('file', {}).get('id') == f.id]
        assert seq[0] == 'file:processing' and seq[-1] == 'file:completed'
    assert len([e for e in evs if e['type'] == 'file:progress']) < 1000


def test_idempotency_keys_on_the_hub(hub):
    ev = {'type': 'heartbeat', 'pipeline_id': 'idem', 'pipeline_type': 'x', 'meta': {'idempotency_key': 'k1'}}
    assert post(hub.url, [ev]) == (200, {'ids': [1]})
    assert post(hub.url, [ev, dict(ev, meta={'idempotency_key': 'k2'})]) == (200, {'ids': [1, 2]})
    assert post(hub.url, ev) == (200, {'id': 1})
    # the key is scoped by pipeline
    assert post(hub.url, dict(ev, pipeline_id='idem2')) == (200, {'id': 3})
    status, body = post(hub.url, dict(ev, meta={'idempotency_key': 7}))
    assert status == 400 and body['field'] == 'meta.idempotency_key' and body['rule'], body
    status, body = post(hub.url, dict(ev, meta={'idempotency_key': 'x' * 129}))
    assert status == 400 and body['field'] == 'meta.idempotency_key'
    assert [e['id'] for e in all_events(hub.url, 'idem')] == [1, 2], 'nothing stored twice'


def test_idempotency_keys_survive_a_hub_restart(tmp_path):
    db = tmp_path / 'hub.db'
    srv = start_hub(db=db)
    ev = {'type': 'heartbeat', 'pipeline_id': 'idem-r', 'pipeline_type': 'x', 'meta': {'idempotency_key': 'k'}}
    try:
        assert post(srv.url, ev) == (200, {'id': 1})
    finally:
        srv.stop()
    srv = start_hub(db=db)
    try:
        assert post(srv.url, ev) == (200, {'id': 1})
        assert len(all_events(srv.url, 'idem-r')) == 1
    finally:
        srv.stop()


def test_a_lost_ack_is_resent_and_stored_once(hub, tmp_path):
    proxy = DropAnswerProxy((hub.host, hub.port), drop=3)
    try:
        with ragpulse.Pipeline('lost', hub=proxy.url, queue=str(tmp_path / 'q')) as p:
            for i in range(20):
                p.heartbeat(files_pending=i)
        assert proxy.dropped == 3
    finally:
        proxy.close()
    evs = all_events(hub.url, 'lost')
    assert types(evs) == ['pipeline:online'] + ['heartbeat'] * 20 + ['pipeline:offline']
    assert [e.get('files_pending') for e in evs[1:-1]] == list(range(20))
    assert len(set(keys(evs))) == len(evs)


def test_the_hub_down_mid_stream_then_back_every_event_once_in_order(tmp_path):
    db = tmp_path / 'hub.db'
    port = free_port()
    srv = start_hub(port=port, db=db)
    with ragpulse.Pipeline('outage', hub=srv.url, queue=str(tmp_path / 'q'), flush_timeout=T) as p:
        for i in range(300):
            p.heartbeat(files_pending=i)
        wait_for(lambda: p.queued == 0, 'the first 300 delivered')
        srv.stop()
        for i in range(300, 1000):
            p.heartbeat(files_pending=i)
        wait_for(lambda: p.last_error is not None, 'the sender to see the hub down')
        assert p.queued > 0
        srv = start_hub(port=port, db=db)  # same port, same store
        assert p.flush(T), 'delivered once the hub is back'
    try:
        evs = all_events(srv.url, 'outage')
        assert [e.get('files_pending') for e in evs if e['type'] == 'heartbeat'] == list(range(1000))
        assert types(evs)[0] == 'pipeline:online' and types(evs)[-1] == 'pipeline:offline'
        assert len(set(keys(evs))) == len(evs) == 1002
        assert [e['id'] for e in evs] == sorted(e['id'] for e in evs)
    finally:
        srv.stop()


PRODUCER = textwrap.dedent('''
    import sys
    sys.path.insert(0, sys.argv[1])
    import ragpulse
    p = ragpulse.Pipeline('killed', hub=sys.argv[2], queue=sys.argv[3])
    p.open()
    for i in range(50):
        p.heartbeat(files_pending=i)
    print('queued', flush=True)
    sys.stdin.read()  # stays alive, its queue unsent, until the test kills it
''')


def test_a_producer_killed_mid_run_delivers_its_queue_when_started_again(hub, tmp_path):
    q = str(tmp_path / 'q')
    dead = f'http://127.0.0.1:{free_port()}'  # nobody listens: nothing is delivered
    proc = subprocess.Popen([sys.executable, '-c', PRODUCER, os.path.join(REPO_DIR, 'clients', 'python'), dead, q],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'queued'
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=T)
    with ragpulse.Pipeline('killed', hub=hub.url, queue=q) as p:
        p.heartbeat(files_pending=50)
    evs = all_events(hub.url, 'killed')
    assert types(evs) == ['pipeline:online'] + ['heartbeat'] * 50 + ['pipeline:online', 'heartbeat',
                                                                     'pipeline:offline']
    assert [e['files_pending'] for e in evs if e['type'] == 'heartbeat'] == list(range(51))
    assert not os.path.getsize(q), 'the queue is empty once delivered'


def test_a_queue_is_one_producers(hub, tmp_path):
    with ragpulse.Pipeline('lock', hub=hub.url, queue=str(tmp_path / 'q')):
        with pytest.raises(ragpulse.QueueLocked):
            ragpulse.Pipeline('lock', hub=hub.url, queue=str(tmp_path / 'q')).open()


def test_the_documents_pipeline_status_calls(hub, tmp_path, monkeypatch):
    monkeypatch.setenv('RAGPULSE_HUB', hub.url)
    monkeypatch.setenv('RAG_PIPELINE_ID', 'gd-docs')
    pipeline_status = PipelineStatus(queue=str(tmp_path / 'q'))
    # copied from the documents ("Event Emission")
    pipeline_status.update(status="running", pipeline_type="google_drive")
    pipeline_status.add_processing_file("document.pdf", "12345")
    pipeline_status.complete_file("document.pdf", success=True)
    # and the failing case
    pipeline_status.add_processing_file("broken.pdf", "666")
    pipeline_status.complete_file("broken.pdf", success=False, error="unsupported encryption")
    pipeline_status.update(status="stopped")
    evs = all_events(hub.url, 'gd-docs')
    assert types(evs) == ['pipeline:online', 'status:update', 'file:processing', 'file:completed',
                          'file:processing', 'file:failed', 'pipeline:offline']
    assert all(e['pipeline_type'] == 'google_drive' for e in evs)
    assert evs[1]['status'] == 'running'
    assert evs[2]['file'] == {'id': '12345', 'name': 'document.pdf'}
    assert evs[3]['file']['id'] == '12345'
    assert evs[5]['file']['error']['message'] == 'unsupported encryption'
    [st] = get(hub.url, '/api/rag-status')['pipelines']
    assert st['type'] == 'google_drive' and st['counters']['processed'] == 1 and st['counters']['failed'] == 1


def test_package_passes_mypy_strict():
    """The package is typed (py.typed): Debian's mypy, installed by scripts/bootstrap, finds
    nothing with --strict."""
    pkg = os.path.join(REPO_DIR, 'clients', 'python', 'ragpulse')
    res = subprocess.run(['/usr/bin/python3', '-m', 'mypy', '--strict', '--no-incremental', pkg],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert 'Success: no issues found' in res.stdout
