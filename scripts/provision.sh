#!/usr/bin/env bash
# Provision a machine for Tether's integration tests (Debian 12, run as root).
#
# - Installs `slapd` and `ldap-utils` (and `openssl`, and `libsasl2-modules` for SASL PLAIN/SCRAM)
#   from Debian's packages when missing.
#   The test fixtures start their own slapd processes from generated configs; the system
#   slapd service is never used, so it is stopped and disabled right after install.
# - Installs `pgbouncer` from Debian's packages when missing (the PgBouncer fixture runs its own
#   process from a generated config; the system service is stopped and disabled after install).
# - Installs `prometheus` (with `promtool`) and `chromium` from Debian's packages when missing:
#   the observe tests scrape the admin server with a real Prometheus (started by the testkit's
#   Prometheus fixture, never the system service) and drive the dashboard in headless Chromium.
# - Checks that PostgreSQL 15 server binaries (initdb, pg_ctl, pg_basebackup, postgres) and a
#   `postgres` OS user exist, and says what to do when they do not.
#
# Idempotent, non-interactive, and fast (no apt calls) when everything is already present.
# Usage: npm run provision   (or: bash scripts/provision.sh)
set -euo pipefail

log() { printf 'provision: %s\n' "$*"; }
warn() { printf 'provision: WARNING: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }
# slapd lives in /usr/sbin, which is not always on a non-root PATH.
have_slapd() { have slapd || [ -x /usr/sbin/slapd ]; }

status=0

# ---------------------------------------------------------------- OpenLDAP + openssl
packages=()
have_slapd || packages+=(slapd)
{ have ldapsearch && have ldapwhoami && have ldapadd; } || packages+=(ldap-utils)
have openssl || packages+=(openssl)
# slapadd ships with slapd; a half-removed slapd would lack it.
if have_slapd && ! { have slapadd || [ -x /usr/sbin/slapadd ]; }; then packages+=(slapd); fi
# Prometheus (+ promtool) and Chromium for the observe tests; PgBouncer for the PgBouncer fixture.
{ have prometheus && have promtool; } || packages+=(prometheus)
{ have chromium || [ -x /usr/bin/chromium ]; } || packages+=(chromium)
{ have pgbouncer || [ -x /usr/sbin/pgbouncer ]; } || packages+=(pgbouncer)
# Cyrus SASL PLAIN and SCRAM plugins for slapd (the Slapd fixture's `sasl` option; passwords come
# from the directory through slapd's own auxprop, so no sasldb / sasl2-bin is needed).
{ compgen -G '/usr/lib/*/sasl2/libplain.so*' >/dev/null && compgen -G '/usr/lib/*/sasl2/libscram.so*' >/dev/null; } ||
  packages+=(libsasl2-modules)

if [ "${#packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "provision: missing packages: ${packages[*]}; run this script as root (sudo bash scripts/provision.sh)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Never let the package start the system slapd during install (policy-rc.d is honoured by
  # invoke-rc.d); restore whatever was there afterwards.
  policy=/usr/sbin/policy-rc.d
  policy_backup=""
  if [ -e "$policy" ]; then policy_backup="$(mktemp)"; cp -p "$policy" "$policy_backup"; fi
  restore_policy() {
    if [ -n "$policy_backup" ]; then mv -f "$policy_backup" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"

  # Only refresh the package lists when apt does not know the packages yet.
  need_update=0
  for p in "${packages[@]}"; do
    if ! apt-cache show "$p" >/dev/null 2>&1; then need_update=1; fi
  done
  if [ "$need_update" -eq 1 ]; then
    log "apt-get update"
    apt-get update -qq
  fi
  log "installing: ${packages[*]}"
  if ! apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null; then
    if [ "$need_update" -eq 0 ]; then
      # Stale package lists (a mirror dropped an old version): refresh once and retry.
      log "install failed; apt-get update and retry"
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    else
      exit 1
    fi
  fi
  restore_policy
  trap - EXIT
  # Belt and braces: the fixtures never use the system services (they run their own on loopback ports).
  for service in slapd prometheus prometheus-node-exporter pgbouncer; do
    if have service; then service "$service" stop >/dev/null 2>&1 || true; fi
    if have systemctl && [ -d /run/systemd/system ]; then
      systemctl disable --now "$service" >/dev/null 2>&1 || true
    fi
  done
  log "installed: ${packages[*]} (system services stopped; the fixtures run their own)"
else
  log "slapd, ldap-utils, openssl, prometheus, chromium and pgbouncer already installed"
fi

for f in /usr/lib/ldap/back_mdb.so /usr/lib/ldap/syncprov.so /etc/ldap/schema/core.schema \
  /etc/ldap/schema/cosine.schema /etc/ldap/schema/inetorgperson.schema /etc/ldap/schema/nis.schema; do
  if [ ! -e "$f" ]; then
    warn "$f is missing; reinstall slapd: apt-get install --reinstall slapd"
    status=1
  fi
done

# ---------------------------------------------------------------- PostgreSQL 15
pg_bindir=""
for d in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/15/bin; do
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then pg_bindir="$d"; break; fi
done
missing_pg=()
for b in initdb pg_ctl pg_basebackup postgres; do
  if [ -n "$pg_bindir" ] && [ -x "$pg_bindir/$b" ]; then continue; fi
  have "$b" || missing_pg+=("$b")
done
if [ "${#missing_pg[@]}" -gt 0 ]; then
  warn "PostgreSQL 15 server binaries not found: ${missing_pg[*]}."
  warn "Install them with: apt-get install -y postgresql-15 (the fixtures look in PATH, pg_config --bindir and /usr/lib/postgresql/15/bin)"
  status=1
else
  version="$("${pg_bindir:-$(dirname "$(command -v postgres)")}/postgres" --version 2>/dev/null || true)"
  log "PostgreSQL server binaries: ${pg_bindir:-PATH} (${version})"
fi
if ! id postgres >/dev/null 2>&1; then
  warn "no 'postgres' OS user: the PostgreSQL fixture runs the server as it (the server refuses root)."
  warn "Create it with: useradd --system --home /var/lib/postgresql --shell /bin/bash postgres (installing postgresql-15 does this)"
  status=1
else
  log "OS user 'postgres' exists"
fi
if ! have runuser; then
  warn "runuser not found (package util-linux): the PostgreSQL fixture needs it"
  status=1
fi

if [ "$status" -eq 0 ]; then log "ok"; fi
exit "$status"
