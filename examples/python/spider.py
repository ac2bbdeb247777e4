"""The Python reference spider: ThreadPoolExecutor(N) + urllib, crawling level by level.

    python3 examples/python/spider.py --start http://127.0.0.1:PORT/page/0 [--concurrency 100]

Prints `spider: pages=N errors=E secs=S mode=python` at the end, like greenrt's spider.
"""
import argparse
import concurrent.futures
import re
import sys
import time
import urllib.parse
import urllib.request

HREF = re.compile(r'<a [^>]*href="([^"]*)"')


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read().decode("utf-8", "replace")
        return 200, [urllib.parse.urljoin(url, h).split("#")[0] for h in HREF.findall(body)]
    except Exception:
        return 0, []


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--start", required=True)
    p.add_argument("--concurrency", type=int, default=100)
    a = p.parse_args()
    host = urllib.parse.urlsplit(a.start).netloc
    seen, level = {a.start}, [a.start]
    pages = errors = 0
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(a.concurrency) as pool:
        while level:
            nxt = []
            for url, (status, links) in zip(level, pool.map(fetch, level)):
                pages += 1
                errors += status != 200
                for link in links:
                    if urllib.parse.urlsplit(link).netloc == host and link not in seen:
                        seen.add(link)
                        nxt.append(link)
            level = nxt
    print(f"spider: pages={pages} errors={errors} secs={time.perf_counter() - t0:.2f} mode=python")


if __name__ == "__main__":
    sys.exit(main())
