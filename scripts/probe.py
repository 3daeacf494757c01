"""A well-behaved client that times a GET every 2 ms, for the scripts that
measure what a hostile client costs everyone else. The scripts run with
this directory on PYTHONPATH:

    p = probe.Probe(port)   # connects and starts
    ...                     # the attack
    print(p.stop())         # "other client: N GETs, p50 ..., slowest ..."
"""
import socket
import threading
import time

GET = b"*2\r\n$3\r\nGET\r\n$5\r\nprobe\r\n"


class Probe:
    def __init__(self, port):
        self.lat = []
        self.done = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        f = self.sock.makefile("rb")
        while not self.done.is_set():
            t = time.perf_counter()
            self.sock.sendall(GET)
            f.readline()  # "$-1": the key does not exist
            self.lat.append(time.perf_counter() - t)
            time.sleep(0.002)

    def stop(self):
        """Stops the probe and sums up its round trips."""
        self.done.set()
        self.thread.join()
        self.sock.close()
        lat = sorted(self.lat)
        n = len(lat)
        return "other client: %4d GETs, p50 %6.2f ms, p99 %7.1f ms, slowest %7.1f ms" % (
            n, lat[n // 2] * 1e3, lat[int(n * 0.99)] * 1e3, lat[-1] * 1e3)
