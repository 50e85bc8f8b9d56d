"""Many datagrams per system call: ``sendmmsg(2)`` and ``recvmmsg(2)``
through ctypes (Python's socket module binds neither).

A stream sends its echo requests ``_Batch.SIZE`` at a time from frames,
I/O vectors and message headers allocated once (``_Batch``, fed by
``_Echo.render_into``); the receiver reads up to ``_ReceiveBatch.SIZE``
datagrams of a socket at once, each with its source address and kernel
receive time (SO_TIMESTAMPNS). Where libc lacks them, the callers fall
back to one ``sendto``/``recvmsg`` per packet.
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import time

from testbed.traffic.packets import _Echo

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux values


class _Batch:
    """Echo requests of one stream sent ``SIZE`` at a time with one
    ``sendmmsg(2)`` system call (Linux; Python's socket module has no
    binding, so ctypes calls libc). The frames, their I/O vectors and
    message headers are allocated once; each batch only patches the frames
    (``_Echo.render_into``)."""

    SIZE = 64

    def __init__(self, sock: socket.socket, echo: _Echo):
        import ctypes

        self._ctypes = ctypes
        self._libc = _libc()
        self._fd = sock.fileno()
        self._echo = echo
        frame = echo._frame
        self.length = len(frame)
        self.frames = ctypes.create_string_buffer(frame * self.SIZE, self.length * self.SIZE)
        family, destination = echo.family, echo.address[0]
        if family == socket.AF_INET:
            address = struct.pack("=H2s4s8x", socket.AF_INET, b"\0\0", socket.inet_aton(destination))
        else:
            address = struct.pack("=H2sI16sI", socket.AF_INET6, b"\0\0", 0,
                                  socket.inet_pton(socket.AF_INET6, destination), 0)
        self._address = ctypes.create_string_buffer(address, len(address))
        self._vectors = (_IOVec * self.SIZE)()
        self._messages = (_MMsgHdr * self.SIZE)()
        base = ctypes.addressof(self.frames)
        for i in range(self.SIZE):
            self._vectors[i].base = base + i * self.length
            self._vectors[i].length = self.length
            header = self._messages[i].header
            header.name = ctypes.addressof(self._address)
            header.namelen = len(address)
            header.iov = ctypes.addressof(self._vectors[i])
            header.iovlen = 1
        self._view = memoryview(self.frames).cast("B")

    def send(self, first: int, count: int, now_ns: int) -> int:
        """Send probes ``first`` .. ``first + count - 1`` (count at most
        SIZE) stamped ``now_ns``; the number the kernel took (it stops at
        the first that fails), or raise ``OSError`` if none."""
        view, length, render = self._view, self.length, self._echo.render_into
        for i in range(count):
            render(view, i * length, first + i, now_ns)
        sent = self._libc.sendmmsg(self._fd, self._messages, count, 0)
        if sent < 0:
            code = self._ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        return sent


@functools.lru_cache(maxsize=None)
def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sendmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    libc.sendmmsg.restype = ctypes.c_int
    libc.recvmmsg.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p)
    libc.recvmmsg.restype = ctypes.c_int
    return libc


def _mmsg_types():
    import ctypes

    class IOVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]

    class MsgHdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                    ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    class MMsgHdr(ctypes.Structure):
        _fields_ = [("header", MsgHdr), ("length", ctypes.c_uint)]

    return IOVec, MsgHdr, MMsgHdr


_IOVec, _MsgHdr, _MMsgHdr = _mmsg_types()
# Offsets in an array of struct mmsghdr, read and written in place (ctypes
# attribute access costs more than the datagram's own handling).
_MMSG_STRIDE = __import__("ctypes").sizeof(_MMsgHdr)
_NAMELEN_AT = _MMsgHdr.header.offset + _MsgHdr.namelen.offset
_CONTROLLEN_AT = _MMsgHdr.header.offset + _MsgHdr.controllen.offset
_MSGLEN_AT = _MMsgHdr.length.offset
_NAMELEN, _CONTROLLEN, _MSGLEN = struct.Struct("@I"), struct.Struct("@N"), struct.Struct("@I")
_TIMESTAMP = struct.Struct("@Niiqq")  # struct cmsghdr, then struct timespec




class _ReceiveBatch:
    """Up to ``SIZE`` datagrams of a receiving socket per ``recvmmsg(2)``
    (ctypes: Python has no binding), into buffers allocated once, with each
    datagram's source address and kernel receive time (SO_TIMESTAMPNS)."""

    SIZE = 64
    BUFFER = 2048
    NAME = 28      # sizeof(struct sockaddr_in6)
    CONTROL = 64   # room for the SO_TIMESTAMPNS message

    def __init__(self, sock: socket.socket):
        import ctypes

        self._ctypes = ctypes
        self._libc = _libc()
        self._fd = sock.fileno()
        self.family = sock.family
        size = self.SIZE
        self._data = ctypes.create_string_buffer(self.BUFFER * size)
        self._names = ctypes.create_string_buffer(self.NAME * size)
        self._controls = ctypes.create_string_buffer(self.CONTROL * size)
        self._vectors = (_IOVec * size)()
        self._messages = (_MMsgHdr * size)()
        data, names, controls = (ctypes.addressof(b) for b in (self._data, self._names, self._controls))
        for i in range(size):
            self._vectors[i].base = data + i * self.BUFFER
            self._vectors[i].length = self.BUFFER
            header = self._messages[i].header
            header.name = names + i * self.NAME
            header.iov = ctypes.addressof(self._vectors[i])
            header.iovlen = 1
            header.control = controls + i * self.CONTROL
            header.namelen = self.NAME
            header.controllen = self.CONTROL
        self._headers = memoryview(self._messages).cast("B")
        self._used = 0
        self.view = memoryview(self._data).cast("B")
        self._name_view = memoryview(self._names).cast("B")
        self._control_view = memoryview(self._controls).cast("B")

    def receive(self) -> int:
        """How many datagrams were read (raises ``OSError``, EAGAIN when none)."""
        headers, stride = self._headers, _MMSG_STRIDE
        for i in range(self._used):  # the kernel rewrote these lengths
            _NAMELEN.pack_into(headers, i * stride + _NAMELEN_AT, self.NAME)
            _CONTROLLEN.pack_into(headers, i * stride + _CONTROLLEN_AT, self.CONTROL)
        count = self._libc.recvmmsg(self._fd, self._messages, self.SIZE, socket.MSG_DONTWAIT, None)
        if count < 0:
            code = self._ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self._used = count
        return count

    def message(self, i: int) -> tuple[int, int]:
        """(offset in ``view``, length) of datagram ``i``."""
        return i * self.BUFFER, _MSGLEN.unpack_from(self._headers, i * _MMSG_STRIDE + _MSGLEN_AT)[0]

    def timestamp(self, i: int) -> int:
        """Kernel receive time of datagram ``i`` (ns), from its SO_TIMESTAMPNS
        message, the only control message the socket asks for."""
        length, level, kind, seconds, nanoseconds = _TIMESTAMP.unpack_from(self._control_view, i * self.CONTROL)
        if length >= _TIMESTAMP.size and level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            return seconds * 1_000_000_000 + nanoseconds
        return time.time_ns()

    def source(self, i: int) -> str:
        base = i * self.NAME
        if self.family == socket.AF_INET:
            return socket.inet_ntop(socket.AF_INET, bytes(self._name_view[base + 4:base + 8]))
        return socket.inet_ntop(socket.AF_INET6, bytes(self._name_view[base + 8:base + 24]))
