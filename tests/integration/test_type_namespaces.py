"""Producers on the type namespaces, as the documents have them (issue 14, item 1): a
python-socketio 5.7 `Client` connects to /google_drive and emits events there. Each is either
accepted (acked with its id, stored, its pipeline_type taken from the namespace when absent) or
refused with an error ack and a counter (a pipeline_type of another namespace, an unknown event
name); nothing is dropped in silence.

Run: /usr/bin/python3 -m pytest -q tests/integration/test_type_namespaces.py
"""
import re

import pytest
import requests
import socketio

from conftest import USE_REF, start_server

T = 5
pytestmark = pytest.mark.skipif(USE_REF, reason='the hub exists only in ragpulse serve')


@pytest.fixture
def hub():
    srv = start_server(['--store', 'memory'], product=True)
    yield srv
    srv.stop()


def refused_invalid(srv):
    text = requests.get(srv.url + '/metrics', timeout=T).text
    m = re.search(r'^ragpulse_events_refused_total\{reason="invalid_event"\} (\d+)$', text, re.M)
    assert m, 'ragpulse_events_refused_total{reason="invalid_event"} in /metrics'
    return int(m.group(1))


def test_pipeline_on_its_type_namespace(hub):
    sio = socketio.Client(reconnection=False)
    sio.connect(hub.url, namespaces=['/google_drive'], transports=['websocket'], wait_timeout=T)
    try:
        # The documents' pipeline: no pipeline_type, the namespace says it.
        ack = sio.call('pipeline:online', {'pipeline_id': 'gdrive-prod-001', 'heartbeat_interval': 10},
                       namespace='/google_drive', timeout=T)
        assert ack == {'id': 1}, ack
        ack = sio.call('file:processing', {'pipeline_id': 'gdrive-prod-001', 'pipeline_type': 'google_drive',
                                           'file': {'id': 'doc-1', 'name': 'Quarterly.gdoc'}},
                       namespace='/google_drive', timeout=T)
        assert ack == {'id': 2}, ack
        before = refused_invalid(hub)
        ack = sio.call('file:completed', {'pipeline_id': 'gdrive-prod-001', 'pipeline_type': 'local_files',
                                          'file': {'id': 'doc-1', 'name': 'Quarterly.gdoc'}},
                       namespace='/google_drive', timeout=T)
        assert ack.get('error') == 'invalid event' and ack.get('field') == 'pipeline_type', ack
        assert 'google_drive' in ack['rule'] and '/google_drive' in ack['rule'], ack
        ack = sio.call('file:done', {'pipeline_id': 'gdrive-prod-001'}, namespace='/google_drive', timeout=T)
        assert ack.get('error') == 'invalid event' and "'file:done' is not an event type" in ack['rule'], ack
        assert refused_invalid(hub) == before + 2, 'each refusal is counted'

        status = requests.get(hub.url + '/api/rag-status', timeout=T).json()
        assert status['version'] == 2, 'the two accepted events are stored, the refused ones are not'
        [p] = status['pipelines']
        assert p['id'] == 'gdrive-prod-001' and p['type'] == 'google_drive', p
        assert p['counters']['in_flight'] == 1, p['counters']
        log = requests.get(hub.url + '/api/events?pipeline=gdrive-prod-001', timeout=T).json()
        assert sorted(e['pipeline_type'] for e in log['events']) == ['google_drive', 'google_drive']
    finally:
        sio.disconnect()
