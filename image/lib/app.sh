# The Node runtime (from the npm registry package node-linux-<cpu>, the project's Node version) and the
# clawbox app with production dependencies only, for the target architecture.
# shellcheck shell=bash

# node_fetch: downloads (once, into the cache) and unpacks node-linux-$NPM_CPU@$NODE_VERSION; sets
# NODE_PKG_DIR (the unpacked package: bin/node, include/node for addon builds) and NODE_INTEGRITY.
node_fetch() {
  local dir=$CACHE_DIR/node tgz
  tgz=$dir/node-linux-$NPM_CPU-$NODE_VERSION.tgz
  mkdir -p "$dir"
  if [ ! -f "$tgz" ] || [ ! -f "$tgz.integrity" ]; then
    say "    npm pack node-linux-$NPM_CPU@$NODE_VERSION"
    local tmp
    tmp=$(mktemp -d "$dir/.pack.XXXXXX")
    cleanup_later "$tmp"
    (cd "$tmp" && npm pack --json "node-linux-$NPM_CPU@$NODE_VERSION" >pack.json) ||
      die "npm pack node-linux-$NPM_CPU@$NODE_VERSION failed (is the npm registry reachable?)"
    node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1]))[0].integrity)' \
      "$tmp/pack.json" >"$tmp/integrity"
    mv -f "$tmp/node-linux-$NPM_CPU-$NODE_VERSION.tgz" "$tgz"
    mv -f "$tmp/integrity" "$tgz.integrity"
  fi
  NODE_INTEGRITY=$(cat "$tgz.integrity")
  NODE_PKG_DIR=$WORK/node-pkg
  rm -rf "$NODE_PKG_DIR"
  mkdir -p "$NODE_PKG_DIR"
  tar -xzf "$tgz" -C "$NODE_PKG_DIR" --strip-components=1
  [ -x "$NODE_PKG_DIR/bin/node" ] || die "node-linux-$NPM_CPU@$NODE_VERSION has no bin/node"
}

# app_build: compiles dist/ in the source tree (tsc; the same as `npm run build`).
app_build() {
  (cd "$SRC_DIR" && npm run build --silent) || die "npm run build failed in $SRC_DIR (fix the TypeScript errors above)"
  [ -f "$SRC_DIR/dist/runtime/main.js" ] || die "npm run build produced no dist/runtime/main.js"
}

# app_stage DIR: the installable app in DIR (what goes to /opt/clawbox/app).
app_stage() {
  local app=$1
  mkdir -p "$app"
  cp "$SRC_DIR/package.json" "$SRC_DIR/package-lock.json" "$app/"
  cp -r "$SRC_DIR/bin" "$app/bin"
  # Compiled JavaScript and its source maps (stack traces name the .ts lines); no build info.
(cd "$SRC_DIR" && find dist -type f \( -name '*.js' -o -name '*.js.map' -o -name '*.json' \) ! -name '.tsbuildinfo' -print0 |
    tar --null -T - -cf -) | tar -xf - -C "$app" || die "copying dist/ failed"
  say "    npm ci --omit=dev --ignore-scripts (linux/$NPM_CPU)"
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --os=linux --cpu="$NPM_CPU" --libc=glibc \
    --loglevel=error) >&2 || die "npm ci --omit=dev failed"
  app_prune "$app"
  app_native_addons "$app"
}

# app_prune DIR: what cannot run on the target or is only needed to build from source.
app_prune() {
  local modules=$1/node_modules pkg kept=''
  for pkg in "$modules"/@node-llama-cpp/*; do
    [ -e "$pkg" ] || continue
    case "$(basename "$pkg")" in
      # The CPU backend of the target. CUDA and Vulkan need drivers and device access the image does not
      # have (see systemd/gpu.conf.example for hosts that do).
      "linux-$NPM_CPU") kept="$kept $(basename "$pkg")" ;;
      *) rm -rf "$pkg" ;;
    esac
  done
  say "    node-llama-cpp backends kept:${kept:- none}"
  # Type declarations and the TypeScript compiler (an optional peer of node-llama-cpp) never run.
  rm -rf "$modules/typescript" "$modules/@types" "$modules/.bin/tsc" "$modules/.bin/tsserver"
  # llama.cpp's source bundle, used only to build llama.cpp from source.
  rm -f "$modules/node-llama-cpp/llama/gitRelease.bundle"
  # Prebuilt addons for other platforms.
  find "$modules" -type d -path '*/prebuilds/*' \( -name 'darwin-*' -o -name 'win32-*' -o -name 'android-*' \
    -o -name 'freebsd-*' -o -name 'linux-arm' -o -name 'linux-ia32' -o -name 'linux-armv7' \) -prune -exec rm -rf {} +
  find "$modules" -type d -path '*/prebuilds/*' -name 'linux-*' ! -name "linux-$NPM_CPU" -prune -exec rm -rf {} +
  # musl variants of the glibc prebuilds.
  find "$modules" -path '*/prebuilds/*' -name '*musl*' -prune -exec rm -rf {} +
}

# app_native_addons DIR: unix-dgram (sd_notify) ships no prebuild, so it is compiled here for the target:
# natively for the host architecture, with the aarch64 cross compiler for arm64 on amd64. The Node headers
# come from the very node-linux package that goes into the image.
app_native_addons() {
  local app=$1 addon=$1/node_modules/unix-dgram
  [ -d "$addon" ] || die "unix-dgram is not among the production dependencies"
  local -a env=()
  if [ "$DEB_ARCH" != "$HOST_DEB_ARCH" ]; then
    command -v "$GNU_TRIPLET-g++" >/dev/null ||
      die "cross-compiling unix-dgram for $DEB_ARCH needs $GNU_TRIPLET-g++: apt-get install g++-$GNU_TRIPLET"
    env=(CC="$GNU_TRIPLET-gcc" CXX="$GNU_TRIPLET-g++" LINK="$GNU_TRIPLET-g++" AR="$GNU_TRIPLET-ar")
  fi
  say "    compiling unix-dgram for $DEB_ARCH (node-gyp, headers of node $NODE_VERSION)"
  (cd "$addon" && env "${env[@]}" npm_config_nodedir="$NODE_PKG_DIR" npm_config_arch="$NPM_CPU" \
    node "$SRC_DIR/node_modules/node-gyp/bin/node-gyp.js" rebuild --nodedir="$NODE_PKG_DIR" --arch="$NPM_CPU" \
    >"$WORK/unix-dgram-build.log" 2>&1) || { tail -n 30 "$WORK/unix-dgram-build.log" >&2; die "building unix-dgram failed"; }
  local built=$addon/build/Release/unix_dgram.node
  [ -f "$built" ] || die "unix-dgram built no unix_dgram.node"
  # Keep only the addon itself, not the object files.
  find "$addon/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$addon/build/Release" -mindepth 1 ! -name unix_dgram.node -exec rm -rf {} +
  file_arch_check "$built"
}

# file_arch_check FILE: the ELF machine of FILE matches the target.
file_arch_check() {
  local machine
  machine=$(od -An -t u2 -j 18 -N 2 "$1" | tr -d ' ')
  case "$DEB_ARCH:$machine" in
    amd64:62 | arm64:183) ;;
    *) die "$1 was built for ELF machine $machine, not $DEB_ARCH" ;;
  esac
}
