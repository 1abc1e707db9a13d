"""Authentication with Debian's python-socketio 5.7 (issue 7): a pipeline producer holding a
producer token from `ragpulse token` connects with `auth={'token': ...}` and its events are
acked; without a token, or with a viewer's, it is refused with the reason, and nothing is
stored.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_auth_python.py
"""
import os
import subprocess

import pytest
import requests
import socketio

from conftest import BUILD_DIR, USE_REF, start_server

T = 5
SECRET = 'python-auth-secret-0123456789'
pytestmark = pytest.mark.skipif(USE_REF, reason='auth exists only in ragpulse serve')


def token(role, pipelines):
    out = subprocess.run([os.path.join(BUILD_DIR, 'ragpulse'), 'token', '--role', role, '--pipelines', pipelines],
                         env=dict(os.environ, RAGPULSE_JWT_SECRET=SECRET), capture_output=True, text=True,
                         timeout=10, check=True)
    return out.stdout.strip()


@pytest.fixture
def hub():
    srv = start_server(['--store', 'memory', '--jwt-secret', SECRET], product=True)
    yield srv
    srv.stop()


def version(hub):
    r = requests.get(hub.url + '/api/rag-status', headers={'Authorization': 'Bearer ' + token('admin', '')}, timeout=T)
    assert r.status_code == 200, r.text
    return r.json()['version']


def test_python_producer_with_a_token(hub):
    sio = socketio.Client(reconnection=False)
    sio.connect(hub.url, namespaces=['/pipeline'], transports=['websocket'], wait_timeout=T,
                auth={'token': token('producer', 'py-auth')})
    try:
        ev = {'pipeline_id': 'py-auth', 'pipeline_type': 'local_files', 'heartbeat_interval': 10}
        assert sio.call('pipeline:online', ev, namespace='/pipeline', timeout=T) == {'id': 1}
        other = dict(ev, pipeline_id='someone-else')
        ack = sio.call('pipeline:online', other, namespace='/pipeline', timeout=T)
        assert ack['error'].startswith('forbidden: '), ack
    finally:
        sio.disconnect()
    assert version(hub) == 1


@pytest.mark.parametrize('auth,reason', [(None, 'unauthorized: no token'),
                                         ({'token': 'not.a.jwt'}, 'unauthorized: bad token')])
def test_python_producer_refused(hub, auth, reason):
    sio = socketio.Client(reconnection=False)
    seen = []
    sio.on('connect_error', lambda data: seen.append(data), namespace='/pipeline')
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(hub.url, namespaces=['/pipeline'], transports=['websocket'], wait_timeout=T, auth=auth)
    assert seen and seen[0]['message'].startswith(reason), seen
    sio.disconnect()
    assert version(hub) == 0


def test_python_viewer_token_cannot_produce(hub):
    sio = socketio.Client(reconnection=False)
    sio.connect(hub.url, namespaces=['/pipeline'], transports=['polling'], wait_timeout=T,
                auth={'token': token('viewer', 'py-auth')})
    try:
        ack = sio.call('heartbeat', {'pipeline_id': 'py-auth', 'pipeline_type': 'local_files'},
                       namespace='/pipeline', timeout=T)
        assert ack['error'] == 'forbidden: viewers cannot send events', ack
    finally:
        sio.disconnect()
    assert version(hub) == 0
