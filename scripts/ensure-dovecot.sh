#!/usr/bin/env bash
# Make sure Dovecot's IMAP server is installed (Debian's `dovecot-imapd` package), for the email
# tests: they start their own Dovecot on a free loopback port with a config of their own
# (tests/mailservers.py), so nothing is configured or started here; and the system user the
# test mailboxes belong to.  Idempotent: does nothing when
# the binaries are there.  Runs as root (CI) or as a user with passwordless sudo; never reads
# stdin.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "ensure-dovecot: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

MAIL_USER=bridgemail  # owns the test mailboxes: Dovecot will not store mail as root
have() { [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && id -u "$MAIL_USER" >/dev/null 2>&1; }

if have; then
    exit 0
fi
if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
    say "creating the system user $MAIL_USER"
    as_root useradd --system --no-create-home --shell /usr/sbin/nologin "$MAIL_USER"
fi
if [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ]; then
    exit 0
fi
say "installing Dovecot (apt-get)"
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends dovecot-imapd </dev/null
# Debian's package starts a system-wide Dovecot on ports 143/993; the tests do not use it.
if have; then
    say "Dovecot $(/usr/sbin/dovecot --version) installed"
else
    say "dovecot-imapd did not install /usr/sbin/dovecot and /usr/lib/dovecot/imap"
    exit 1
fi
