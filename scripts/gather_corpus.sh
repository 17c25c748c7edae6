#!/usr/bin/env bash
# Gathers the training corpus of the default model (training/README.md): downloads English
# prose packages from Debian 12 with `apt-get download` (no root needed), extracts them with
# dpkg-deb, and converts them to plain text with training/gather_corpus.py. Writes
# training/data/{train.txt,heldout.txt,SOURCES.json,licenses/} and corpus.tar.xz (what is
# uploaded to the GPU machine). training/data/ is git-ignored.
#
#   scripts/gather_corpus.sh              # download, extract, convert, pack
#   KEEP_DEBS=DIR scripts/gather_corpus.sh  # reuse/keep the .deb files in DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/training/data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

packages=(
  fortunes fortunes-min jargon-text wordnet-base dict-gcide dict-foldoc
  debian-handbook python3.11-doc debian-reference-en debian-faq debian-policy
  developers-reference maint-guide gnu-standards perl-doc postgresql-doc-15 doc-debian
)

debs="${KEEP_DEBS:-$work/debs}"
mkdir -p "$debs"
missing=()
for p in "${packages[@]}"; do
  ls "$debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if ! (cd "$debs" && apt-get download "${missing[@]}"); then
    echo "gather_corpus: apt-get download failed; run 'sudo apt-get update' and retry" >&2
    exit 1
  fi
fi

mkdir -p "$work/x"
: > "$work/versions"
for p in "${packages[@]}"; do
  deb=$(ls "$debs/${p}_"*.deb | head -1)
  echo "$p $(dpkg-deb -f "$deb" Version)" >> "$work/versions"
  mkdir -p "$work/x/$p"
  dpkg-deb -x "$deb" "$work/x/$p"
done

rm -rf "$out"
mkdir -p "$out"
python3 "$root/training/gather_corpus.py" --extracted "$work/x" --versions "$work/versions" \
  --out "$out" --packages "${packages[@]}"

# The upload: the text and its provenance, xz-compressed (tar sorts names for reproducibility).
tar -C "$out" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -cf - train.txt heldout.txt SOURCES.json licenses | xz -9 -T2 > "$out/corpus.tar.xz"
ls -l "$out"
