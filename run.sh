#!/usr/bin/env bash
# The main job: installs missing Debian packages, builds the solution (TorchSharp and libtorch come from NuGet), then runs
# an online RL run on the embedded default (all services in one process, in-process bus): GRPO on the
# synthetic "a+b=" task, configured by services/OnlineRl.Cli/configs/grpo-addition.yaml.
# Extra arguments override config keys, e.g. ./run.sh --train.steps 50 --algorithm.name dpo
set -euo pipefail
cd "$(dirname "$0")"
source deploy/setup-debian.sh
onlinerl_setup
echo "==> building (Release)"
dotnet build services/OnlineRl.Cli/OnlineRl.Cli.csproj -c Release -v quiet -nologo -clp:NoSummary
# Two malloc arenas (glibc reads this at start-up): libtorch's freed memory otherwise piles up in per-thread arenas.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec dotnet services/OnlineRl.Cli/bin/Release/net10.0/onlinerl.dll run --config services/OnlineRl.Cli/configs/grpo-addition.yaml "$@"
