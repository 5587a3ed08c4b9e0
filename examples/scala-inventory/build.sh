#!/bin/sh
# Build build/inventory.jar: a Scala 2 fat JAR (the component's classes plus
# scala-library, unpacked side by side, as sbt-assembly would do), compiled
# against the cncf collaborator API jar, which the hub provides at run time.
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
API=$("$PYTHON" -m cncf.jvm.build --api-jar)
SCALA_LIBRARY=${SCALA_LIBRARY:-}
for candidate in /usr/share/scala-2.11/lib/scala-library.jar /usr/share/scala/lib/scala-library.jar; do
  [ -n "$SCALA_LIBRARY" ] || { [ -f "$candidate" ] && SCALA_LIBRARY=$candidate; } || true
done
[ -n "$SCALA_LIBRARY" ] || { echo "scala-library.jar not found (apt-get install scala, or set SCALA_LIBRARY)" >&2; exit 1; }

rm -rf build && mkdir -p build/classes build/fat
scalac -nowarn -d build/classes -classpath "$API" src/example/*.scala
(cd build/fat && jar xf "$SCALA_LIBRARY" && rm -rf META-INF/MANIFEST.MF META-INF/*.SF META-INF/*.RSA META-INF/*.DSA)
cp -R build/classes/. build/fat/
jar cf build/inventory.jar -C build/fat .
rm -rf build/fat
echo "built $(pwd)/build/inventory.jar"
