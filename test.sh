#!/usr/bin/env bash
# The whole test suite: installs missing Debian packages, builds the solution (TorchSharp and libtorch come from NuGet),
# runs every test project, and ends with one line "N passed, N failed, N skipped".
# Exit code: non-zero when any test failed or a test project could not run.
set -uo pipefail
cd "$(dirname "$0")"
source deploy/setup-debian.sh
onlinerl_setup || exit 1

echo "==> building (Release)"
dotnet build OnlineRl.sln -c Release -v quiet -nologo -clp:NoSummary || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"
echo "==> testing"
dotnet test OnlineRl.sln -c Release --no-build --results-directory "$results" --logger "trx" \
  --logger "console;verbosity=minimal" 2>&1 | tee "$results/console.log"
status=${PIPESTATUS[0]}

# Sum the per-project summary lines ("Failed!  - Failed: 1, Passed: 9, Skipped: 0, Total: 10, ...").
read -r passed failed skipped < <(grep -aoE 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$results/console.log" |
  awk -F'[:,]' '{f += $2; p += $4; s += $6} END {print p + 0, f + 0, s + 0}')
projects=$(find tests -name '*.Tests.csproj' | wc -l)
reported=$(grep -acE 'Failed: +[0-9]+, Passed: +[0-9]+, Skipped: +[0-9]+' "$results/console.log")
if [ "$reported" -lt "$projects" ]; then
  echo "error: only $reported of $projects test projects reported results (a test host crashed?)"
  failed=$((failed + projects - reported))
fi

# Print each skipped test with its reason from the TRX files.
if [ "$skipped" -gt 0 ]; then
  echo "Skipped tests:"
  /usr/bin/python3 - "$results" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for path in glob.glob(sys.argv[1] + "/*.trx"):
    for r in ET.parse(path).getroot().iterfind(".//t:UnitTestResult", ns):
        if r.get("outcome") == "NotExecuted":
            reason = " ".join(t.text or "" for t in r.iterfind(".//t:Message", ns)) or \
                     " ".join(t.text or "" for t in r.iterfind(".//t:StdOut", ns))
            print(f"  - {r.get('testName')}: {reason.strip()}")
PY
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
