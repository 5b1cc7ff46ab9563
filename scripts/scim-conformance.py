#!/usr/bin/env python3
"""Run scim2-tester (an independent RFC 7643/7644 conformance checker, `pip install
scim2-tester`) against a running teamgate's SCIM endpoint and print every check.

Usage: scripts/scim-conformance.py BASE_URL TOKEN
  BASE_URL  e.g. http://127.0.0.1:8080/scim/v2/entra
  TOKEN     from `teamgate scim-token create entra`

Exit status 0 when no check failed or errored. The last line is "N passed, N failed" (with the
skipped count), the form the test runners read.
"""

import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, token = sys.argv[1].rstrip("/"), sys.argv[2]
    http = httpx2.Client(
        base_url=base + "/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    results = check_server(client, resource_types=["User", "Group"])
    counts = {}
    for r in results:
        status = r.status.name
        counts[status] = counts.get(status, 0) + 1
        where = f"[{r.resource_type}] " if getattr(r, "resource_type", None) else ""
        reason = f": {r.reason}" if r.reason and r.status != Status.SUCCESS else ""
        print(f"{status:<8} {where}{r.title}{reason}")
    passed = counts.get("SUCCESS", 0)
    failed = counts.get("ERROR", 0) + counts.get("CRITICAL", 0)
    skipped = sum(v for k, v in counts.items() if k not in ("SUCCESS", "ERROR", "CRITICAL"))
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
