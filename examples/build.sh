#!/bin/sh
# Build the bundled examples that need a build step, once: the hub itself
# never builds a component (it runs artifacts other people built), so the
# artifacts exist before `cncf serve examples/hub.toml` / `cncf run` loads them.
#
#   scala-inventory/build/inventory.jar   a Scala 2 fat JAR (scalac + a JDK)
#
# Rebuilds only when a source is newer than the artifact.  A missing tool is
# reported and skipped (exit 0): the hub then serves the other examples and
# shows the inventory component as failed (artifact_not_found), with the fix.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
export PYTHON

jar=scala-inventory/build/inventory.jar
stale=1
if [ -f "$jar" ]; then
  stale=0
  for src in scala-inventory/src/example/*.scala scala-inventory/build.sh; do
    [ "$src" -nt "$jar" ] && stale=1
  done
fi
if [ "$stale" -eq 0 ]; then
  echo "examples: $jar is up to date"
elif ! command -v scalac >/dev/null 2>&1 || ! command -v jar >/dev/null 2>&1; then
  echo "examples: skipping $jar: scalac and a JDK are needed (bash scripts/install-system-deps.sh installs them)" >&2
else
  echo "examples: building $jar (scalac, ~30 s the first time)"
  sh scala-inventory/build.sh >/dev/null
  echo "examples: built $jar"
fi
