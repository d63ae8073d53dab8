"""Run a command on a pseudo-terminal (100 columns, 24 rows): bytes on our stdin are typed into it,
what it writes to the terminal comes out on our stdout, and our exit code is its own.
A test helper for commands that behave differently on a terminal (test/helpers/pty.ts; not named pty.py, which would shadow the module it imports)."""
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios

pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])


def stop(signum, _frame):
    # The command runs in a session of its own (pty.fork), so our signal does not reach it: pass
    # it on, or a killed test would leave the command running.
    try:
        os.kill(pid, signal.SIGKILL)
    finally:
        sys.exit(128 + signum)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)

stdin_open = True
while True:
    watched = [fd] + ([0] if stdin_open else [])
    ready, _, _ = select.select(watched, [], [])
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            os.write(fd, data)
        else:
            stdin_open = False
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)
