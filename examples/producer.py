#!/usr/bin/env python3
"""An example producer for the ragpulse pipeline status hub.

It connects to the hub's /pipeline namespace with python-socketio's synchronous client and
reports one batch of files the way an ingestion pipeline would:

    pipeline:online  -> for each file: file:processing, file:progress per stage, file:completed
                        (the last file fails with a reason instead)
                     -> heartbeat -> pipeline:offline

Every event is sent with call(), so the hub acknowledges it: {"id": N} with the id it assigned,
or {"error": "invalid event", "field": ..., "rule": ...}. The script prints each id and stops
at the first refusal.

    pip install "python-socketio[client]"      # or: apt install python3-socketio
    ragpulse serve &                            # listens on 127.0.0.1:8103
    python3 examples/producer.py --hub http://127.0.0.1:8103

Then watch it: curl http://127.0.0.1:8103/api/rag-status
"""
import argparse
import sys
import time

import socketio

NAMESPACE = '/pipeline'
STAGES = [('parse', 0.25), ('chunk', 0.5), ('embed', 0.75), ('store', 1.0)]


class Refused(Exception):
    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description='Report a batch of files to a ragpulse hub.')
    ap.add_argument('--hub', default='http://127.0.0.1:8103', help='hub URL (default %(default)s)')
    ap.add_argument('--pipeline-id', default='example-local-1', help='default %(default)s')
    ap.add_argument('--pipeline-type', default='local_files', help='default %(default)s')
    ap.add_argument('--files', type=int, default=3, help='files in the batch (default %(default)s)')
    ap.add_argument('--delay', type=float, default=0.0,
                    help='seconds to sleep between events, to watch it live (default %(default)s)')
    ap.add_argument('--heartbeat-interval', type=float, default=30.0,
                    help='seconds between heartbeats this pipeline promises (default %(default)s)')
    ap.add_argument('--transport', choices=['websocket', 'polling'], default=None,
                    help='force one transport (default: polling, then upgrade)')
    ap.add_argument('--timeout', type=float, default=10.0, help='seconds to wait for each ack')
    args = ap.parse_args(argv)
    if args.files < 1:
        ap.error('--files must be at least 1')

    sio = socketio.Client(reconnection=False)
    base = {'pipeline_id': args.pipeline_id, 'pipeline_type': args.pipeline_type}

    def send(event_type, **fields):
        """Sends one event and waits for the hub's ack; returns the assigned id."""
        ack = sio.call(event_type, {**base, **fields}, namespace=NAMESPACE, timeout=args.timeout)
        if not isinstance(ack, dict) or 'id' not in ack:
            raise Refused(f'{event_type} refused: {ack!r}')
        file_name = fields.get('file', {}).get('name', '')
        print(f'{event_type:<18} {file_name:<14} id={ack["id"]}', flush=True)
        if args.delay:
            time.sleep(args.delay)
        return ack['id']

    try:
        sio.connect(args.hub, namespaces=[NAMESPACE], wait_timeout=args.timeout,
                    transports=[args.transport] if args.transport else None)
    except socketio.exceptions.ConnectionError as e:
        print(f'cannot connect to {args.hub}: {e}', file=sys.stderr)
        return 2

    files = [{'id': f'doc-{i + 1}', 'name': f'report-{i + 1}.pdf', 'size': 10_000 * (i + 1),
              'mime_type': 'application/pdf'} for i in range(args.files)]
    failing = files[-1]['id']
    try:
        send('pipeline:online', heartbeat_interval=args.heartbeat_interval,
             files_total=len(files), files_pending=len(files), message='batch started',
             meta={'example': True})
        for n, f in enumerate(files):
            ident = {'id': f['id'], 'name': f['name']}
            send('file:processing', file={**f, 'stage': 'queued', 'progress': 0.0})
            chunks = 0
            for stage, progress in STAGES:
                if f['id'] == failing and stage == 'embed':
                    send('file:failed', file={**ident, 'stage': stage, 'error': {
                        'message': f'embedding service returned HTTP 503 for {f["name"]}',
                        'kind': 'upstream', 'code': 503, 'retryable': True}},
                        files_pending=len(files) - n - 1)
                    break
                chunks += 4
                send('file:progress', file={**ident, 'stage': stage, 'progress': progress, 'chunks': chunks})
            else:
                send('file:completed', file={**ident, 'progress': 1.0, 'chunks': chunks},
                     files_pending=len(files) - n - 1)
            send('heartbeat', files_pending=len(files) - n - 1)
        send('pipeline:offline', message='batch done')
    except Refused as e:
        print(e, file=sys.stderr)
        return 1
    except socketio.exceptions.TimeoutError:
        print('the hub did not acknowledge in time', file=sys.stderr)
        return 1
    finally:
        sio.disconnect()
    return 0


if __name__ == '__main__':
    sys.exit(main())
