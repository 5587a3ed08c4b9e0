#!/usr/bin/env bash
# System packages the test suite needs besides PyPI: a JDK (javac), Scala 2.11
# (scalac with its scala-library), PyPy 3, Node.js, Perl, the Debian jars the
# JVM fixtures and value tests use, and Chromium for the dashboard's browser
# tests (driven by Playwright's Python package at Debian's executable: no
# browser download), Prometheus (its server, started by the metrics test on
# a loopback port; the package's service is not used), and PostgreSQL for the
# shared job store's tests (started by tests/jobs/pg.py from
# /usr/lib/postgresql/*/bin).  Idempotent; installs only what is missing.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v javac >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
command -v scalac >/dev/null 2>&1 || need+=(scala)
command -v pypy3 >/dev/null 2>&1 || need+=(pypy3)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v curl >/dev/null 2>&1 || need+=(curl)
perl -MJSON::PP -e1 >/dev/null 2>&1 || need+=(perl)   # the wire-protocol doc's Perl worker
[ -f /usr/share/java/commons-lang3.jar ] || need+=(libcommons-lang3-java)
[ -f /usr/share/java/guava.jar ] || need+=(libguava-java)
[ -f /usr/share/java/commons-io.jar ] || need+=(libcommons-io-java)
[ -f /usr/share/java/commons-text.jar ] || need+=(libcommons-text-java)
[ -f /usr/share/java/jackson-databind.jar ] || need+=(libjackson2-databind-java)
[ -f /usr/share/java/joda-time.jar ] || need+=(libjoda-time-java)
[ -f /usr/share/java/commons-codec.jar ] || need+=(libcommons-codec-java)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)   # scrapes `cncf serve` in tests/http/test_prometheus.py
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Nothing missing: nothing to fetch (a second run, e.g. the README's test
# command after .ci/run's own install step, costs no apt-get update).
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${need[@]}"
fi
