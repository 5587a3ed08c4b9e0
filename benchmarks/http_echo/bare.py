"""The floor: a bare Starlette + uvicorn echo app, same server settings as ``cncf serve``."""

import json
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def echo(request: Request) -> Response:
    body = json.loads(await request.body())
    return Response(json.dumps({"ok": True, "value": body.get("value")}).encode(), media_type="application/json")


app = Starlette(routes=[Route("/echo", echo, methods=["POST"])])

if __name__ == "__main__":
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"port {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, server_header=False)
    server = uvicorn.Server(config)
    try:
        import uvloop

        uvloop.run(server.serve(sockets=[sock]))
    except ImportError:
        import asyncio

        asyncio.run(server.serve(sockets=[sock]))
    sys.exit(0)
