"""Start-up time of `sigil serve` on an existing database and keys.

Usage: startup_time.py SIGIL_BINARY LISTEN_ADDR RUNS LOGFILE

Starts the server RUNS times in the current directory (which holds the
database and keys/), each time measuring, from the moment the process is
spawned: when its log says it is listening, and when GET /healthz first
answers 200. Then stops it with SIGTERM. Prints one line of JSON with the
median and maximum of each, and the server's own `startup_ms` log field.
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time


def healthz_ok(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one_run(binary, listen, log):
    host, port = listen.rsplit(":", 1)
    env = dict(os.environ, SIGIL_LISTEN=listen)
    started = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], stderr=subprocess.PIPE, env=env, text=True)
    listening = None
    startup_ms = None
    try:
        for line in proc.stderr:
            log.write(line)
            if "listen=" in line:
                listening = time.perf_counter() - started
                match = re.search(r"startup_ms=(\d+)", line)
                startup_ms = int(match.group(1)) if match else None
                break
        if listening is None:
            raise SystemExit("sigil exited before listening; see the log")
        while not healthz_ok(host, int(port)):
            time.sleep(0.0005)
        ready = time.perf_counter() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
        log.write(rest)
    return listening * 1000, ready * 1000, startup_ms


def main():
    binary, listen, runs, logfile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    results = []
    with open(logfile, "a") as log:
        for _ in range(runs):
            results.append(one_run(binary, listen, log))
    listening = [r[0] for r in results]
    ready = [r[1] for r in results]
    logged = [r[2] for r in results if r[2] is not None]
    print(json.dumps({
        "runs": runs,
        "listening_ms_median": round(statistics.median(listening), 1),
        "listening_ms_max": round(max(listening), 1),
        "healthz_ms_median": round(statistics.median(ready), 1),
        "healthz_ms_max": round(max(ready), 1),
        "logged_startup_ms_median": statistics.median(logged) if logged else None,
    }))


if __name__ == "__main__":
    main()
