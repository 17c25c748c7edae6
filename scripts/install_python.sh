#!/usr/bin/env bash
# Makes `import vllm` work for the Python interpreters of this machine, offline: links the built
# extension (_vllm_cpp) into python/vllm/ and writes a vllm-cpp.pth into each interpreter's
# site-packages pointing at the repository's python/ folder. Safe to run again.
#
#   scripts/install_python.sh [BUILD_DIR]     # default: build/release
#
# Interpreters: the `python3` on the PATH, /usr/bin/python3, and any named in $VLLM_PYTHONS
# (space-separated). Each must be CPython of the version the extension was built for (3.11 here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
case "$build" in /*) ;; *) build=$root/$build ;; esac

shopt -s nullglob
modules=("$build"/python/vllm/_vllm_cpp*.so)
if [ ${#modules[@]} -eq 0 ]; then
  echo "install_python.sh: no _vllm_cpp module in $build/python/vllm (build the _vllm_cpp target first)" >&2
  exit 1
fi
module=${modules[0]}
name=$(basename "$module")

# One module in python/vllm/ (git-ignored): drop links to other builds or Python versions.
for old in "$root"/python/vllm/_vllm_cpp*.so; do
  [ "$(basename "$old")" = "$name" ] || rm -f "$old"
done
ln -sfn "$module" "$root/python/vllm/$name"
echo "linked python/vllm/$name -> $module"

interpreters=()
command -v python3 >/dev/null 2>&1 && interpreters+=("$(command -v python3)")
[ -x /usr/bin/python3 ] && interpreters+=(/usr/bin/python3)
for p in ${VLLM_PYTHONS:-}; do interpreters+=("$p"); done

seen=""
status=0
for py in "${interpreters[@]}"; do
  # Interpreters behind pyenv shims and symlinks resolve to the same one: do each once.
  real=$("$py" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
  case " $seen " in *" $real "*) continue ;; esac
  seen="$seen $real"
  # site-packages of that interpreter (the first writable one; the user site as a fallback).
  site=$("$py" - <<'EOF'
import os, site, sysconfig
candidates = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
for path in candidates:
    if os.path.isdir(path) and os.access(path, os.W_OK):
        print(path)
        break
else:
    print(site.getusersitepackages())
EOF
  )
  mkdir -p "$site"
  echo "$root/python" > "$site/vllm-cpp.pth"
  if out=$(cd / && "$py" -c 'import vllm, vllm._vllm_cpp; print(vllm.__file__)' 2>&1); then
    echo "$real: import vllm -> $out (via $site/vllm-cpp.pth)"
  else
    echo "$real: import vllm FAILED: $out" >&2
    status=1
  fi
done
exit $status
