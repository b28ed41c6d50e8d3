"""gunicorn's threaded worker with a read timeout on client connections.

gunicorn 27's gthread worker reads request headers and bodies from blocking
sockets without a timeout, so a few dozen clients that send half a request
and then nothing would hold every request thread. Here each client socket
gets READ_TIMEOUT_SECONDS per read and send; a client that stalls for longer
is disconnected as if it had reset the connection.
"""

from __future__ import annotations

import errno
import socket

from gunicorn.workers.gthread import ThreadWorker

READ_TIMEOUT_SECONDS = 10.0


class TimeoutSocket(socket.socket):
    """A client socket whose blocking mode has a timeout instead of none."""

    @classmethod
    def adopt(cls, sock: socket.socket) -> TimeoutSocket:
        """Take over the connection of ``sock``, which is detached."""
        family, kind, proto = sock.family, sock.type, sock.proto
        return cls(family, kind, proto, fileno=sock.detach())

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(READ_TIMEOUT_SECONDS)
        else:
            super().setblocking(False)

    # gunicorn logs other socket errors with a traceback; a stalled client is
    # routine, so it is reported as the reset gunicorn ignores.
    def recv(self, *args) -> bytes:
        try:
            return super().recv(*args)
        except TimeoutError:
            raise ConnectionResetError(errno.ECONNRESET, "client stalled") from None

    def sendall(self, *args) -> None:
        try:
            return super().sendall(*args)
        except TimeoutError:
            raise ConnectionResetError(errno.ECONNRESET, "client stalled") from None


class TimeoutThreadWorker(ThreadWorker):
    """gthread worker whose client sockets time out after READ_TIMEOUT_SECONDS."""

    def handle(self, conn):
        if not isinstance(conn.sock, TimeoutSocket):
            conn.sock = TimeoutSocket.adopt(conn.sock)
        return super().handle(conn)
