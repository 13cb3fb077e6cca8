#!/usr/bin/env bash
# Compile and run the Android demo's Android-free classes and their JUnit 4
# tests on a plain JVM (Debian: `apt-get install default-jdk-headless junit4`).
#
#   android_demo/run_jvm_tests.sh [-Dbnn.bundle=DIR -Dbnn.expected=DIR]
#
# Extra -D options are passed to the JVM (RealBundleTest uses them; it is
# skipped without them). Exit status: 0 when every test passed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
main_src="$here/app/src/main/java/org/bnntf/demo/core"
test_src="$here/app/src/test/java/org/bnntf/demo/core"

find_jar() {
  for candidate in "$@"; do
    if [ -f "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}
junit="$(find_jar "${JUNIT_JAR:-}" /usr/share/java/junit4.jar)" || {
  echo "error: junit4.jar not found. Fix: apt-get install junit4 (or set JUNIT_JAR)" >&2; exit 2; }
hamcrest="$(find_jar "${HAMCREST_JAR:-}" /usr/share/java/hamcrest-core.jar /usr/share/java/hamcrest.jar)" || {
  echo "error: hamcrest jar not found. Fix: apt-get install junit4 (it depends on libhamcrest-java)" >&2; exit 2; }
command -v javac >/dev/null || { echo "error: javac not found. Fix: apt-get install default-jdk-headless" >&2; exit 2; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cp="$junit:$hamcrest"
# The core package must compile without android.jar: that is what keeps it Android-free.
javac -Xlint:all -Werror -d "$out/main" "$main_src"/*.java
javac -Xlint:all -d "$out/test" -cp "$out/main:$cp" "$test_src"/*.java
classes=()
for f in "$test_src"/*Test.java; do
  classes+=("org.bnntf.demo.core.$(basename "$f" .java)")
done
java -Djava.awt.headless=true "$@" -cp "$out/main:$out/test:$cp" org.junit.runner.JUnitCore "${classes[@]}"
