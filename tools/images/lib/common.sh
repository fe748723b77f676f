# shellcheck shell=bash
# Shared by tools/images/*.sh: the toolchain, host tools (buildah, debootstrap), names and paths.

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../../../scripts/lib/toolchain.sh
source "$IMAGES_DIR/../../scripts/lib/toolchain.sh"
# useradd, chroot and debootstrap live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

# shellcheck disable=SC2034 # used by the scripts that source this file
IMAGES_CACHE="$STREAM_CACHE/images"
# Every image this tooling builds is named localhost/stream/<package>:check.
IMAGE_PREFIX="${STREAM_IMAGE_PREFIX:-localhost/stream}"
IMAGE_TAG="${STREAM_IMAGE_TAG:-check}"
# Registry traffic from inside a build may go through a TLS proxy whose CA only the host trusts: the host's
# bundle and an npmrc naming it are bind-mounted into each RUN (never copied into a layer).
HOST_CA_BUNDLE="${STREAM_IMAGES_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

step() { printf '\n\033[1m[%s] == %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }

APT_UPDATED=""
# Installs the Debian packages that provide the given commands when any is missing (idempotent).
ensure_host_tools() {
  local -a missing=()
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "needs ${missing[*]} (Debian packages) and root to install them: sudo apt-get install ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "needs ${missing[*]}; this is not a Debian/Ubuntu machine, install them by hand"
    log "installing ${missing[*]} with apt-get"
    if [ -z "$APT_UPDATED" ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  fi
  [ "$(id -u)" = 0 ] || die "buildah with --isolation chroot needs root here (run as root or with sudo)"
}

# A home directory for the root user of build steps, bind-mounted over /root (which every base image
# has, so no mount point is left behind in a layer): an .npmrc naming a copy of the host's CA bundle, read
# by npm and pnpm. Created fresh for each build and removed after it; nothing of it reaches an image.
make_build_home() {
  local dir
  dir="$(mktemp -d "${TMPDIR:-/tmp}/stream-images-home.XXXXXX")"
  chmod 0700 "$dir"
  cp "$HOST_CA_BUNDLE" "$dir/.build-ca.crt"
  printf 'cafile=/root/.build-ca.crt\n' > "$dir/.npmrc"
  echo "$dir"
}

image_name() { echo "$IMAGE_PREFIX/$1:$IMAGE_TAG"; }
