#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The bench/ relay contract on Debian's python3-socketio (python-socketio 5.7, python-engineio
4.3), run with /usr/bin/python3 (not a pyenv or virtualenv python: the Debian packages live in
/usr/lib/python3/dist-packages).

On namespace "/": `subscribe` {room} joins the room; `publish` {room, ...} broadcasts
`file:progress` with that same object to the room. Both ack `true` when asked.

Usage: /usr/bin/python3 bench/python-relay.py PORT [--mode MODE]

MODE is the python-engineio async mode and the server that runs it:
  aiohttp   AsyncServer on aiohttp's web server (python3-aiohttp)
  eventlet  Server on eventlet.wsgi (python3-eventlet)
  gevent    Server on gevent's pywsgi + gevent-websocket (python3-gevent, python3-gevent-websocket)
            [default]
  asgi      AsyncServer as an ASGI app on uvicorn (python3-uvicorn, python3-websockets)
  tornado   AsyncServer on tornado (python3-tornado)
  threading Server on wsgiref threads: needs simple-websocket for websocket, which Debian 12
            does not package, so it is refused here (rp-loadgen speaks websocket).
gevent was the fastest of these on the benchmark machine: see docs/benchmarks.md.
Everything else is python-socketio's default, except the listen backlog (1024) and, for
eventlet, its WSGI server's default cap of 1024 concurrent connections (raised to 100000).
It listens on 127.0.0.1 only and prints `listening on http://127.0.0.1:PORT` when ready.
"""
import argparse
import signal
import sys

HOST = "127.0.0.1"
BACKLOG = 1024
DEFAULT_MODE = "gevent"


def listening(port):
    print(f"listening on http://{HOST}:{port}", flush=True)


def sync_handlers(sio):
    @sio.on("subscribe")
    def subscribe(sid, msg):
        if isinstance(msg, dict) and isinstance(msg.get("room"), str):
            sio.enter_room(sid, msg["room"])
        return True

    @sio.on("publish")
    def publish(sid, msg):
        if isinstance(msg, dict) and isinstance(msg.get("room"), str):
            sio.emit("file:progress", msg, room=msg["room"])
        return True


def async_handlers(sio):
    @sio.on("subscribe")
    async def subscribe(sid, msg):
        if isinstance(msg, dict) and isinstance(msg.get("room"), str):
            sio.enter_room(sid, msg["room"])
        return True

    @sio.on("publish")
    async def publish(sid, msg):
        if isinstance(msg, dict) and isinstance(msg.get("room"), str):
            await sio.emit("file:progress", msg, room=msg["room"])
        return True


def run_aiohttp(port, **kw):
    import asyncio

    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", **kw)
    async_handlers(sio)
    app = web.Application()
    sio.attach(app)

    async def main():
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port, backlog=BACKLOG)
        await site.start()
        listening(port)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_eventlet(port, **kw):
    import eventlet

    eventlet.monkey_patch()
    import eventlet.wsgi
    import socketio

    sio = socketio.Server(async_mode="eventlet", **kw)
    sync_handlers(sio)
    sock = eventlet.listen((HOST, port), backlog=BACKLOG)
    listening(port)
    eventlet.wsgi.server(sock, socketio.WSGIApp(sio), log_output=False, max_size=100000)


def run_gevent(port, **kw):
    from gevent import monkey

    monkey.patch_all()
    import socketio
    from gevent import pywsgi
    from geventwebsocket.handler import WebSocketHandler

    sio = socketio.Server(async_mode="gevent", **kw)
    sync_handlers(sio)
    server = pywsgi.WSGIServer((HOST, port), socketio.WSGIApp(sio), handler_class=WebSocketHandler,
                               log=None, backlog=BACKLOG)
    server.start()
    listening(port)
    server.serve_forever()


def run_asgi(port, **kw):
    import asyncio

    import socketio
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", **kw)
    async_handlers(sio)
    config = uvicorn.Config(socketio.ASGIApp(sio), host=HOST, port=port, log_level="warning",
                            access_log=False, backlog=BACKLOG, lifespan="off")
    server = uvicorn.Server(config)

    async def main():
        task = asyncio.ensure_future(server.serve())
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            listening(port)
        await task

    asyncio.run(main())


def run_tornado(port, **kw):
    import asyncio

    import socketio
    import tornado.web

    sio = socketio.AsyncServer(async_mode="tornado", **kw)
    async_handlers(sio)
    app = tornado.web.Application([(r"/socket.io/", socketio.get_tornado_handler(sio))])

    async def main():
        app.listen(port, address=HOST, backlog=BACKLOG)
        listening(port)
        await asyncio.Event().wait()

    asyncio.run(main())


def run_threading(port, **kw):
    try:
        import simple_websocket  # noqa: F401
    except ImportError:
        sys.exit("python-relay: threading mode needs simple-websocket for websocket, "
                 "which Debian 12 does not package")
    from wsgiref.simple_server import WSGIServer, make_server
    from socketserver import ThreadingMixIn

    import socketio

    class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        request_queue_size = BACKLOG

    sio = socketio.Server(async_mode="threading", **kw)
    sync_handlers(sio)
    httpd = make_server(HOST, port, socketio.WSGIApp(sio), server_class=ThreadingWSGIServer)
    listening(port)
    httpd.serve_forever()


MODES = {"aiohttp": run_aiohttp, "eventlet": run_eventlet, "gevent": run_gevent,
         "asgi": run_asgi, "tornado": run_tornado, "threading": run_threading}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--mode", choices=sorted(MODES), default=DEFAULT_MODE)
    ap.add_argument("--no-async-handlers", action="store_true",
                    help="handle each event in the connection's own task (python-socketio's "
                         "async_handlers=False) instead of a new one per event (the default)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        kw = {"async_handlers": False} if args.no_async_handlers else {}
        MODES[args.mode](args.port, **kw)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
