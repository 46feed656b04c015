#!/usr/bin/env python3
"""What may take a loopback port held by a bound, never-listening socket (ReservedPort, test_env.h).

Run as root; it re-executes itself in a fresh network namespace whose ip_local_port_range holds
10 ports, so "autobind never takes the held port" is checked by exhausting the range, not by luck:

    sudo tests/support/port_reservation_check.py

For each option set of the holder it prints whether autobind (bind to port 0, the implicit bind of
connect()) ever took the port, and which explicit binds could bind, listen, serve and bind again
after the listener closed. ReservedPort's kClosed is the holder "none", kForListener is "RA".
"""
import errno
import os
import socket
import subprocess
import sys

RA, RP = socket.SO_REUSEADDR, socket.SO_REUSEPORT
OPTION_SETS = ([], [RA], [RP], [RA, RP])


def sock(opts):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for o in opts:
        s.setsockopt(socket.SOL_SOCKET, o, 1)
    return s


def name(opts):
    return "+".join({RA: "RA", RP: "RP"}[o] for o in opts) or "none"


def autobind_takes(port):
    for opts in OPTION_SETS:
        for addr in ("127.0.0.1", "0.0.0.0"):
            held = []
            try:
                while True:
                    s = sock(opts)
                    try:
                        s.bind((addr, 0))
                    except OSError as e:
                        s.close()
                        assert e.errno == errno.EADDRINUSE, e
                        break
                    held.append(s)
                    if s.getsockname()[1] == port:
                        return f"bind({addr}:0) with {name(opts)}"
            finally:
                for s in held:
                    s.close()
    listener = sock([RA])
    listener.bind(("127.0.0.1", 5000))
    listener.listen(100)
    conns = []
    try:
        while True:
            c = sock([])
            try:
                c.connect(("127.0.0.1", 5000))
            except OSError as e:
                c.close()
                assert e.errno in (errno.EADDRNOTAVAIL, errno.EADDRINUSE), e
                break
            conns.append(c)
            if c.getsockname()[1] == port:
                return "connect()"
    finally:
        for c in conns:
            c.close()
        listener.close()
    return None


def explicit_bind(port, opts):
    try:
        for _ in range(2):  # the second round is a restarted server (TIME_WAIT left by the first)
            s = sock(opts)
            try:
                s.bind(("127.0.0.1", port))
                s.listen(8)
                c = socket.create_connection(("127.0.0.1", port), timeout=2)
                a, _ = s.accept()
                c.send(b"x")
                assert a.recv(1) == b"x"
                a.close()
                c.close()
            finally:
                s.close()
        return "serves, rebinds"
    except OSError as e:
        return errno.errorcode[e.errno]


def check():
    for holder_opts in OPTION_SETS:
        holder = sock(holder_opts)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        taken = autobind_takes(port)
        binds = ", ".join(f"{name(o)}: {explicit_bind(port, o)}" for o in OPTION_SETS)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            refused = "CONNECTED"
        except ConnectionRefusedError:
            refused = "refused"
        print(f"holder {name(holder_opts):5}: autobind took it: {taken or 'never'}; "
              f"explicit bind {binds}; connect: {refused}")
        holder.close()


if __name__ == "__main__":
    if os.environ.get("PORT_CHECK_IN_NETNS") != "1":
        script = ("ip link set lo up && echo '40000 40009' > /proc/sys/net/ipv4/ip_local_port_range && "
                  f"PORT_CHECK_IN_NETNS=1 exec {sys.executable} {os.path.abspath(__file__)}")
        sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", script]))
    print("kernel", os.uname().release)
    check()
