#!/usr/bin/env bash
# Make sure what the email tests need is installed: Debian's `dovecot-imapd` (the tests start
# their own Dovecot on a free loopback port with a config of their own, see
# tests/dovecot.py: nothing is configured or started here), `openssl` (the TLS tests make
# their certificates with it) and the system user `bridgemail` the test mailboxes belong to.
# Idempotent: does nothing when all is there.  Runs as root (CI) or as a user with
# passwordless sudo; never reads stdin.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

say() { echo "ensure-dovecot: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

MAIL_USER=bridgemail  # owns the test mailboxes: Dovecot will not store mail as root
binaries() { [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && command -v openssl >/dev/null; }
have() { binaries && id -u "$MAIL_USER" >/dev/null 2>&1; }

if have; then
    exit 0
fi
if ! id -u "$MAIL_USER" >/dev/null 2>&1; then
    say "creating the system user $MAIL_USER"
    as_root useradd --system --no-create-home --shell /usr/sbin/nologin "$MAIL_USER"
fi
if binaries; then
    exit 0
fi
say "installing Dovecot (apt-get)"
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends dovecot-imapd openssl </dev/null
# Debian's package starts a system-wide Dovecot on ports 143/993; the tests do not use it.
if binaries; then
    say "Dovecot $(/usr/sbin/dovecot --version) installed"
else
    say "apt-get did not install /usr/sbin/dovecot, /usr/lib/dovecot/imap and openssl"
    exit 1
fi
