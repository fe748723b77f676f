#!/usr/bin/env bash
# Builds images from docker/Dockerfile with buildah, without a Docker engine or any image pull:
#
#   bash tools/images/build.sh feed-cache [order-emailer ...]   -> localhost/stream/<name>:check
#
# The base image is the local stand-in of node:24-bookworm-slim (lib/base.sh), built once and cached.
# Layers are cached (--layers), so a rebuild with unchanged inputs takes seconds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$IMAGES_DIR/lib/base.sh"

# build_image <package> : builds $(image_name <package>) from the repository at $REPO_ROOT.
build_image() {
  local name="$1" image home started status=0
  image="$(image_name "$name")"
  [ -r "$HOST_CA_BUNDLE" ] || die "no CA bundle at $HOST_CA_BUNDLE (set STREAM_IMAGES_CA_BUNDLE)"
  home="$(make_build_home)"
  started=$SECONDS
  log "build: $image (SERVICE=$name)"
  local logfile="$IMAGES_CACHE/logs/build-$name.log"
  mkdir -p "$(dirname "$logfile")"
  buildah bud \
      --isolation chroot --pull=never --layers --force-rm --format docker \
      --file "$REPO_ROOT/docker/Dockerfile" --ignorefile "$REPO_ROOT/docker/Dockerfile.dockerignore" \
      --build-arg "SERVICE=$name" \
      --volume "$home:/root" \
      --tag "$image" \
      "$REPO_ROOT" > "$logfile" 2>&1 || status=$?
  rm -rf "$home"
  if [ $status -ne 0 ]; then
    tail -n 40 "$logfile" >&2
    die "build of $name failed (whole log: $logfile)"
  fi
  log "build: $image done in $((SECONDS - started)) s"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  [ $# -gt 0 ] || die "usage: tools/images/build.sh <package>... (feed-cache, order-emailer, execution-quality, search-enricher, cli)"
  ensure_toolchain
  ensure_host_tools
  ensure_base_image
  for name in "$@"; do build_image "$name"; done
fi
