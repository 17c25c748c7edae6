# Sourced by the GPU scripts (run_gpu_bench.sh, run_moe_bench.sh): the device image lacks most
# Debian -dev packages this build needs (pcre2, utf8proc, xxhash, nlohmann-json, CLI11,
# spdlog/fmt, Boost, GoogleTest, OpenSSL, curl, ZeroMQ): carry their .debs in .devdeps/ (ignored by git;
# scripts/fetch_devdeps.sh) and they are unpacked into a private prefix that CMake, pkg-config and
# the loader search first. Sets `extra` to the CMake arguments that point there.
extra=()
if ls .devdeps/*.deb >/dev/null 2>&1; then
  dep=/tmp/vllm-devdeps
  if [ ! -d $dep/usr ]; then
    mkdir -p $dep
    for f in .devdeps/*.deb; do dpkg-deb -x "$f" $dep; done
    for pc in $dep/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc; do sed -i "s|^prefix=/usr\$|prefix=$dep/usr|" "$pc"; done
    # Debian's libcurl needs libssh2, LDAP and more that the image lacks: link against the
    # image's own libcurl.so.4 (same ABI) when it has one, with Debian's headers.
    sys_curl=$(ls /usr/lib/x86_64-linux-gnu/libcurl.so.4 2>/dev/null || true)
    if [ -n "$sys_curl" ]; then
      rm -f $dep/usr/lib/x86_64-linux-gnu/libcurl.so*
      ln -s "$sys_curl" $dep/usr/lib/x86_64-linux-gnu/libcurl.so
    fi
  fi
  export PKG_CONFIG_PATH=$dep/usr/lib/x86_64-linux-gnu/pkgconfig:$dep/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$dep/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  extra+=("-DCMAKE_PREFIX_PATH=$dep/usr" "-DCMAKE_INCLUDE_PATH=$dep/usr/include" "-DCMAKE_LIBRARY_PATH=$dep/usr/lib/x86_64-linux-gnu")
else
  echo "warning: no .devdeps/ to unpack; the build needs the Debian -dev packages scripts/setup.sh installs"
fi
