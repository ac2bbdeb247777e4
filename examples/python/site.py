"""The reference web site for spider comparisons: Python's own ThreadingHTTPServer.

    python3 examples/python/site.py [--port 0] [--pages 301] [--links 6] [--delay-ms 100] [--backlog 128]

HTTP/1.1 with keep-alive, as `http.server` does it: the status line and headers are written
first and the body with a separate write. Page i links to pages 6i+1 .. 6i+6 (mod the page
count), so every page is reachable from /page/0. Every answer waits --delay-ms. Prints
`listening on HOST:PORT` first; GET /stats answers `requests=N distinct=M max_per_page=K`.
"""
import argparse
import collections
import http.server
import sys
import threading
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--pages", type=int, default=301)
    p.add_argument("--links", type=int, default=6)
    p.add_argument("--delay-ms", type=int, default=100)
    p.add_argument("--backlog", type=int, default=128)
    a = p.parse_args()
    hits = collections.Counter()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/stats":
                with lock:
                    most = max(hits.values(), default=0)
                    body = f"requests={sum(hits.values())} distinct={len(hits)} max_per_page={most}\n"
                return self.answer(body.encode())
            parts = self.path.split("/")
            if len(parts) != 3 or parts[1] != "page" or not parts[2].isdigit():
                self.send_error(404)
                return
            i = int(parts[2])
            if i >= a.pages:
                self.send_error(404)
                return
            with lock:
                hits[i] += 1
            time.sleep(a.delay_ms / 1000)
            links = "".join(
                f'<a href="/page/{(i * a.links + k) % a.pages}">link</a>\n'
                for k in range(1, a.links + 1)
            )
            self.answer(f"<html><body><h1>page {i}</h1>\n{links}</body></html>\n".encode())

        def answer(self, body):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()  # headers go out here, the body with the next write
            self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = a.backlog
        daemon_threads = True

    server = Server(("127.0.0.1", a.port), Handler)
    host, port = server.server_address
    print(f"listening on {host}:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
