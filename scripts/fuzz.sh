#!/bin/sh
# Runs every fuzz target in the module for FUZZTIME each (default 30s), one
# after the other, and stops at the first failure. go test then has saved
# the failing input under the package's testdata/fuzz/<target>/, where it
# becomes a seed that `make test` runs every time: fix the code, keep the
# file.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
# An input that widens coverage is minimized for up to 60 s by default, and
# meanwhile the run makes no progress (the status line shows 0 execs/s);
# in short runs that was most of the time. 100 tries per input suffice.
MINIMIZE=${FUZZMINIMIZETIME:-100x}
for pkg in $($GO list ./...); do
	list=$($GO test -list '^Fuzz' "$pkg") # a package that does not build stops the run
	for target in $(printf '%s\n' "$list" | grep '^Fuzz' || true); do
		echo "== $target in $pkg, $FUZZTIME"
		$GO test -run '^$' -fuzz "^$target\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$MINIMIZE" "$pkg"
	done
done
