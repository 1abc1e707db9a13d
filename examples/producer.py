#!/usr/bin/env python3
"""An example producer for the ragpulse pipeline status hub, on the ragpulse package
(clients/python): one batch of files reported the way an ingestion pipeline would:

    pipeline:online  -> for each file: file:processing, file:progress per stage, file:completed
                        (the last file fails with a reason instead)
                     -> heartbeat -> pipeline:offline

The package queues every event on disk and POSTs it to /api/events; the hub acknowledges each
with the id it assigned, which this script prints. A refused event raises ragpulse.EventRefused
with the hub's field and rule.

    ragpulse serve &                            # listens on 127.0.0.1:8103
    PYTHONPATH=clients/python python3 examples/producer.py --hub http://127.0.0.1:8103
    # (or: pip install --no-build-isolation ./clients/python)

Then watch it: curl http://127.0.0.1:8103/api/rag-status
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'clients', 'python'))
import ragpulse  # noqa: E402

STAGES = [('parse', 0.25), ('chunk', 0.5), ('embed', 0.75), ('store', 1.0)]


class UpstreamError(Exception):
    """What the embedding service raised."""


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
                    help='accepted for compatibility; the package sends over HTTP')
    ap.add_argument('--timeout', type=float, default=10.0, help='seconds to wait for the hub')
    ap.add_argument('--queue', default=None, help='on-disk queue (default: a fresh temporary file)')
    args = ap.parse_args(argv)
    if args.files < 1:
        ap.error('--files must be at least 1')

    def printed(ev, event_id):
        name = ev.get('file', {}).get('name', '')
        print(f'{ev["type"]:<18} {name:<14} id={event_id}', flush=True)

    qdir = tempfile.TemporaryDirectory(prefix='rp-producer-')
    p = ragpulse.Pipeline(args.pipeline_id, args.pipeline_type, hub=args.hub,
                          heartbeat_interval=args.heartbeat_interval, progress_interval=0,
                          queue=args.queue or os.path.join(qdir.name, 'queue'),
                          flush_timeout=args.timeout, on_ack=printed, meta={'example': True})

    def step():
        """Waits until the hub has everything so far (the ids print in order)."""
        if not p.flush(args.timeout):
            raise TimeoutError(p.last_error or 'the hub did not acknowledge in time')
        if args.delay:
            time.sleep(args.delay)

    files = [{'id': f'doc-{i + 1}', 'name': f'report-{i + 1}.pdf', 'size': 10_000 * (i + 1),
              'mime_type': 'application/pdf'} for i in range(args.files)]
    p.files_total = len(files)
    try:
        p.open()
        if not p.flush(args.timeout):
            print(f'cannot connect to {args.hub}: {p.last_error}', file=sys.stderr)
            return 2
        for n, spec in enumerate(files):
            with p.file(spec['id'], spec['name'], size=spec['size'], mime_type=spec['mime_type'],
                        on_error='continue') as f:
                step()
                for stage, progress in STAGES:
                    if n == len(files) - 1 and stage == 'embed':
                        f.stage = stage
                        f.fail({'message': f'embedding service returned HTTP 503 for {spec["name"]}',
                                'kind': 'upstream', 'code': 503, 'retryable': True})
                        break
                    f.chunks = (f.chunks or 0) + 4
                    f.progress(progress, stage=stage)
                    step()
            step()
            p.heartbeat(files_pending=len(files) - n - 1)
            step()
        p.close(message='batch done')
    except ragpulse.EventRefused as e:
        print(e, file=sys.stderr)
        return 1
    except TimeoutError as e:
        print(f'the hub did not acknowledge in time: {e}', file=sys.stderr)
        return 1
    finally:
        p.close()
        qdir.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
