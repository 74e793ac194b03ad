#!/usr/bin/env bash
# Make sure the browser tests' browser is installed: Debian's `chromium` (/usr/bin/chromium),
# driven by Playwright for Python with `executable_path` (tests/browser.py); Playwright's own
# browser downloads are never used.  Idempotent; runs as root (CI) or with passwordless sudo;
# never reads stdin.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "ensure-chromium: installing Debian's chromium (apt-get)" >&2
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core </dev/null
