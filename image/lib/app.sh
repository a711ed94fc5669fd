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
  [ -f "$SRC_DIR/dist/app/main.js" ] || die "npm run build produced no dist/app/main.js"
}

# app_stage DIR: the installable app in DIR (what goes to /opt/clawbox/app).
app_stage() {
  local app=$1
  mkdir -p "$app"
  cp "$SRC_DIR/package.json" "$SRC_DIR/package-lock.json" "$app/"
  cp -r "$SRC_DIR/bin" "$app/bin"
  # The brain link's wire definition, loaded at run time by @grpc/proto-loader (dist/brain/proto.js finds it here).
  mkdir -p "$app/brain" && cp -r "$SRC_DIR/brain/proto" "$app/brain/proto"
  # Compiled JavaScript and its source maps (stack traces name the .ts lines); no build info.
(cd "$SRC_DIR" && find dist -type f \( -name '*.js' -o -name '*.js.map' -o -name '*.json' \) ! -name '.tsbuildinfo' -print0 |
    tar --null -T - -cf -) | tar -xf - -C "$app" || die "copying dist/ failed"
  # The runtime's own addon (malloc_trim, runtime/system/malloc-trim.ts): its sources, compiled below with the
  # packages' addons; only the binary stays.
  mkdir -p "$app/native/malloc-trim"
  cp "$SRC_DIR/native/malloc-trim/"{binding.gyp,malloc_trim.c,package.json} "$app/native/malloc-trim/"
  say "    npm ci --omit=dev --ignore-scripts (linux/$NPM_CPU)"
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --os=linux --cpu="$NPM_CPU" --libc=glibc \
    --loglevel=error) >&2 || die "npm ci --omit=dev failed"
  app_prune "$app"
  # The runtime bundled into a few files (bin/bundle.js; bin/clawbox.js runs it): a start under an emulated
  # or slow CPU spends much of its time finding, reading and linking ~300 modules one by one. dist/ stays for
  # the child processes and workers, which load their entry files from there. After npm ci: the packages
  # bundled with the runtime (BUNDLED_PACKAGES in bin/bundle.js) come from the app's production dependencies.
  (cd "$SRC_DIR" && node bin/bundle.js "$app") >&2 || die "bundling the runtime failed"
  # Packages a start loads as many small files, each joined into one in place (bin/flatten-packages.js).
  (cd "$SRC_DIR" && node bin/flatten-packages.js "$app") >&2 || die "joining packages into one file each failed"
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
  # Documentation, type declarations and source maps of dependencies, and mathjs's browser bundle.
  find "$modules" -type f \( -iname '*.md' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) \
    ! -iname 'LICENSE*' -delete
  rm -rf "$modules/mathjs/lib/browser"
  # sharp (a peer of Baileys, with libvips) makes media thumbnails; clawbox's channels refuse media and
  # Baileys imports it only on demand, ignoring its absence.
  rm -rf "$modules/sharp" "$modules/@img"
  # llama.cpp's source bundle, used only to build llama.cpp from source.
  rm -f "$modules/node-llama-cpp/llama/gitRelease.bundle"
  # Prebuilt addons for other platforms.
  find "$modules" -type d -path '*/prebuilds/*' \( -name 'darwin-*' -o -name 'win32-*' -o -name 'android-*' \
    -o -name 'freebsd-*' -o -name 'linux-arm' -o -name 'linux-ia32' -o -name 'linux-armv7' \) -prune -exec rm -rf {} +
  find "$modules" -type d -path '*/prebuilds/*' -name 'linux-*' ! -name "linux-$NPM_CPU" -prune -exec rm -rf {} +
  # musl variants of the glibc prebuilds.
  find "$modules" -path '*/prebuilds/*' -name '*musl*' -prune -exec rm -rf {} +
}

# native_addon_dirs DIR: every package with a binding.gyp (a native addon), one per line.
native_addon_dirs() {
  find "$1/node_modules" -name binding.gyp -not -path '*/deps/*' -not -path '*/node_modules/*/node_modules/*/node_modules/*' \
    -exec dirname {} \; | sort
}

# node_gyp: node-gyp from the project's dependencies, else the one bundled with npm.
node_gyp() {
  local gyp=$SRC_DIR/node_modules/node-gyp/bin/node-gyp.js
  if [ ! -f "$gyp" ]; then
    gyp=$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
  fi
  [ -f "$gyp" ] || die "node-gyp not found (neither in node_modules nor bundled with npm)"
  node "$gyp" "$@"
}

# app_native_addons DIR: every native addon must have a binary for the target. Packages that ship a
# prebuild for linux-<cpu> (classic-level, @serialport/bindings-cpp) use it; the others (unix-dgram for
# sd_notify, better-sqlite3 for the db-query plugin, the runtime's own native/malloc-trim) are compiled with
# node-gyp against the headers of the very Node that goes into the image -- natively, or with the aarch64
# cross compiler for arm64 on amd64. For the host's own architecture a binary the host already built for
# the same Node ABI is reused.
app_native_addons() {
  local app=$1 dir rel name host_build target_abi host_abi
  target_abi=$(sed -n 's/^#define NODE_MODULE_VERSION \([0-9][0-9]*\).*/\1/p' "$NODE_PKG_DIR/include/node/node_version.h")
  host_abi=$(node -p process.versions.modules)
  NATIVE_ADDONS=''
  while read -r dir; do
    [ -n "$dir" ] || continue
    rel=${dir#"$app/"}
    # A package by its name; the runtime's own addon by its path (what the smoke test requires).
    case "$rel" in
      node_modules/*) name=${rel#node_modules/} ;;
      *) name=./$rel ;;
    esac
    NATIVE_ADDONS="$NATIVE_ADDONS $name"
    if ls "$dir/prebuilds/linux-$NPM_CPU/"*.node >/dev/null 2>&1; then
      say "    $name: prebuild for linux-$NPM_CPU"
      continue
    fi
    host_build=$SRC_DIR/$rel/build/Release
    if [ "$DEB_ARCH" = "$HOST_DEB_ARCH" ] && [ "$target_abi" = "$host_abi" ] && ls "$host_build"/*.node >/dev/null 2>&1; then
      mkdir -p "$dir/build/Release"
      cp "$host_build"/*.node "$dir/build/Release/"
      say "    $name: reusing the host's build (same arch, Node ABI $host_abi)"
    else
      native_compile "$dir" "$name"
    fi
    # Only the binary stays: no sources, object files or bundled C libraries.
    find "$dir/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
    find "$dir/build/Release" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
    rm -rf "$dir/deps" "$dir/src"
    case "$name" in ./*) rm -f "$dir/"*.c "$dir/binding.gyp" ;; esac
    local binary
    for binary in "$dir/build/Release/"*.node; do file_arch_check "$binary"; done
  done < <(native_addon_dirs "$app"; echo "$app/native/malloc-trim")
  [ -n "$NATIVE_ADDONS" ] || die "found no native addons (unix-dgram at least is expected)"
}

native_compile() {
  local dir=$1 name=$2
  local -a env=()
  if [ "$DEB_ARCH" != "$HOST_DEB_ARCH" ]; then
    command -v "$GNU_TRIPLET-g++" >/dev/null ||
      die "cross-compiling $name for $DEB_ARCH needs $GNU_TRIPLET-g++: apt-get install g++-$GNU_TRIPLET"
    env=(CC="$GNU_TRIPLET-gcc" CXX="$GNU_TRIPLET-g++" LINK="$GNU_TRIPLET-g++" AR="$GNU_TRIPLET-ar")
  fi
  say "    $name: compiling for $DEB_ARCH (node-gyp, headers of node $NODE_VERSION)"
  local log=$WORK/build-$(echo "$name" | tr / _).log
  (cd "$dir" && for kv in "${env[@]}"; do export "${kv?}"; done && node_gyp rebuild --release --nodedir="$NODE_PKG_DIR" --arch="$NPM_CPU" -j "$(nproc)" \
    >"$log" 2>&1) || { tail -n 30 "$log" >&2; die "compiling $name failed (log above)"; }
  ls "$dir/build/Release/"*.node >/dev/null 2>&1 || die "$name: node-gyp built no .node file"
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
