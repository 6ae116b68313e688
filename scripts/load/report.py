"""Print the result of a load run from the summary the locustfile wrote (LOAD_SUMMARY): per-endpoint
figures, total requests per second, read and write 95th percentiles against the targets, errors.

    python scripts/load/report.py <summary.json>

Exit status 1 when any request failed (or the summary is missing), else 0. The p95 targets of issue 10
(reads 300 ms, writes 800 ms) are reported, not enforced: the figures depend on the machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

READ_TARGET_MS = 300
WRITE_TARGET_MS = 800


def _ms(value) -> str:
    return "-" if value in (None, "", "N/A") else f"{float(value):.0f}"


def main(summary_path: str) -> int:
    try:
        data = json.loads(Path(summary_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"no summary ({exc})", file=sys.stderr)
        return 1
    read, write, login = data["read"], data["write"], data["login"]
    print(f"| {'endpoint':<40} | requests | failures | p50 ms | p95 ms | max ms | req/s |")
    print(f"| {'-' * 40} | -------: | -------: | -----: | -----: | -----: | ----: |")
    for name, row in sorted(data["endpoints"].items(), key=lambda item: (item[0].split(":")[0], item[0])):
        print(f"| {name:<40} | {row['requests']:>8} | {row['failures']:>8} | {_ms(row['p50_ms']):>6} "
              f"| {_ms(row['p95_ms']):>6} | {_ms(row['max_ms']):>6} | {row['rps']:5.2f} |")
    print()
    print(f"steady state (every user logged in): {data['duration_s']} s, "
          f"{read['requests'] + write['requests']} requests, {data['rps']} requests/s")
    print(f"reads:  {read['requests']} requests, p50 {_ms(read['p50_ms'])} ms, p95 {_ms(read['p95_ms'])} ms "
          f"(target < {READ_TARGET_MS} ms: {'met' if (read['p95_ms'] or 0) < READ_TARGET_MS else 'NOT met'})")
    print(f"writes: {write['requests']} requests, p50 {_ms(write['p50_ms'])} ms, p95 {_ms(write['p95_ms'])} ms "
          f"(target < {WRITE_TARGET_MS} ms: {'met' if (write['p95_ms'] or 0) < WRITE_TARGET_MS else 'NOT met'})")
    print(f"logins: {login['requests']} requests, p95 {_ms(login['p95_ms'])} ms (not counted as reads or writes)")
    print(f"errors: {data['errors']}")
    for sample in data.get("failure_samples", []):
        print(f"  {sample}")
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
