#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds the native shim and the solution, then runs
# `onlinerl smoke` (until the RL loop lands: a small model trained on the libtorch binding).
# Extra arguments go to the command, e.g. ./run.sh --steps 500
set -euo pipefail
cd "$(dirname "$0")"
source deploy/setup-debian.sh
onlinerl_setup
echo "==> building (Release)"
dotnet build services/OnlineRl.Cli/OnlineRl.Cli.csproj -c Release -v quiet -nologo -clp:NoSummary
exec dotnet services/OnlineRl.Cli/bin/Release/net10.0/onlinerl.dll smoke "$@"
