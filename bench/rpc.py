"""RPC round trips: client -> runner -> client over the Unix socket, in microseconds.

    python bench/rpc.py [--count 2000]

Times ``ping``, ``schedule`` (a new interval job each call) and ``history --limit 100`` (with
a few hundred runs in history) through one ``nbsched.connect()`` client. Indicative figures:
other work on this machine shares its cores.
"""

from __future__ import annotations

import argparse
import time

import _common


def timed(call, count: int) -> list[float]:
    samples = []
    for i in range(count):
        began = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - began) * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="calls per operation")
    options = parser.parse_args()
    count = options.count
    with _common.Runner() as runner:
        client = runner.client
        runner.deploy_noop()
        run_ids = {client.invoke(_common.NOOP_SERVICE) for _ in range(300)}
        _common.wait_all_finished(client, run_ids)
        timed(lambda i: client.ping(), 200)  # warm up
        results = {
            "ping": timed(lambda i: client.ping(), count),
            "schedule": timed(
                lambda i: client.call(
                    "schedule", service=_common.NOOP_SERVICE, name=f"r{i:06d}", every=3600, start="in 1d"
                ),
                count,
            ),
            "history --limit 100": timed(lambda i: client.history_rows(limit=100), count // 4),
            "history() DataFrame --limit 100": timed(lambda i: client.history(limit=100), count // 4),
        }
    print(f"client -> runner round trips ({count} calls each; history {count // 4}):")
    for name, samples in results.items():
        print(f"  {name:32s} {_common.spread(samples, 'us', 0)}")
    print(
        "rpc "
        + " | ".join(
            f"{name} p50/p99 {_common.percentile(s, 50):.0f}/{_common.percentile(s, 99):.0f} us"
            for name, s in results.items()
        )
    )


if __name__ == "__main__":
    main()
