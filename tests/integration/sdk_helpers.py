"""Helpers for the ragpulse package's tests (test_sdk*.py): the package on sys.path, a hub of
its own, the hub's history read back, and a loopback proxy that can drop answers."""
import json
import os
import socket
import sys
import threading
import time
import urllib.request

import pytest

from conftest import REPO_DIR, start_server

sys.path.insert(0, os.path.join(REPO_DIR, 'clients', 'python'))

T = 10  # seconds, bound for every single wait


def get(srv_url, path):
    with urllib.request.urlopen(srv_url + path, timeout=T) as r:
        return json.loads(r.read())


def all_events(srv_url, pipeline):
    """Every stored event of `pipeline`, oldest first (pages of /api/events)."""
    out, before = [], None
    while True:
        q = f'/api/events?pipeline={pipeline}&limit=1000' + (f'&before={before}' if before else '')
        page = get(srv_url, q)['events']
        out.extend(page)
        if len(page) < 1000:
            return out[::-1]
        before = page[-1]['id']


def wait_for(cond, what, timeout=T):
    """Polls cond() until it is true; fails with `what` after timeout s."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f'timeout waiting for {what}')
        # Not a fixed wait: the poll interval of this condition wait, bounded by its deadline.
        time.sleep(0.02)  # poll interval of the condition wait above


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start_hub(tmp_path=None, port=None, db=None):
    args = ['--listen', f'127.0.0.1:{port or 0}']
    args += ['--store', f'sqlite:{db}'] if db else ['--store', 'memory']
    return start_server(args, product=True)


@pytest.fixture
def hub():
    """A fresh hub (memory store) for one test."""
    srv = start_hub()
    yield srv
    srv.stop()


class DropAnswerProxy:
    """A loopback HTTP proxy to `target` (host, port): each request is forwarded whole and the
    answer read; for the first `drop` requests the answer is thrown away and the client's
    connection closed, as a lost ack looks to the client. One request per connection."""

    def __init__(self, target, drop):
        self.target = target
        self.drop = drop
        self.dropped = 0
        self.forwarded = 0
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.url = f'http://127.0.0.1:{self.sock.getsockname()[1]}'
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_request(c):
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = c.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b'\r\n\r\n')
        n = 0
        for line in head.split(b'\r\n')[1:]:
            k, _, v = line.partition(b':')
            if k.strip().lower() == b'content-length':
                n = int(v)
        while len(body) < n:
            chunk = c.recv(65536)
            if not chunk:
                return None
            body += chunk
        head = b'\r\n'.join(l for l in head.split(b'\r\n') if not l.lower().startswith(b'connection:'))
        return head + b'\r\nConnection: close\r\n\r\n' + body

    def _serve(self, c):
        with c:
            req = self._read_request(c)
            if req is None:
                return
            with socket.create_connection(self.target, timeout=T) as up:
                up.sendall(req)
                answer = b''
                while True:
                    chunk = up.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
            self.forwarded += 1
            if self.dropped < self.drop:
                self.dropped += 1
                return  # the hub committed; the client never hears it
            c.sendall(answer)

    def close(self):
        self.closed = True
        self.sock.close()
