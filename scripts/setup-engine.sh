#!/usr/bin/env bash
# Idempotently prepare the local Docker engine on a Debian bookworm host (run as root):
# install docker.io + debootstrap, start dockerd without systemd, and build a local stand-in
# for debian:bookworm-slim (Docker Hub is unreachable). See DESIGN.md "This machine and CI".
set -euo pipefail

IMAGE=debian:bookworm-slim
LOG=${MULTICLOUD_DOCKERD_LOG:-/var/log/multicloud-dockerd.log}
CA=/etc/ssl/certs/ca-certificates.crt
TMP_PREFIX=/var/tmp/multicloud-rootfs.
ROOTFS="" SMOKE="" CHANGED=0

say() { printf 'setup-engine: %s\n' "$*"; }
die() { printf 'setup-engine: ERROR: %s\n' "$*" >&2; exit 1; }
usage() {
  cat <<EOF
Usage: ${0##*/} [--check | --verify | --help]
Install docker.io and debootstrap, start dockerd and build a local $IMAGE (idempotent).
  --check   report only; exit 1 unless the engine answers and $IMAGE exists
  --verify  run the container/network smoke test even when nothing changed
Env: MULTICLOUD_APT_EXTRA      extra Debian packages to install (space-separated)
     MULTICLOUD_DOCKERD_LOG    dockerd log (default /var/log/multicloud-dockerd.log)
     MULTICLOUD_DOCKERD_FLAGS  extra dockerd flags (e.g. --storage-driver=vfs)
EOF
}
engine_up() { timeout 10 docker info >/dev/null 2>&1; }
image_ok() { docker image inspect "$IMAGE" >/dev/null 2>&1; }

mode=setup
case ${1:-} in
  --check) mode=check ;;
  --verify) mode=verify ;;
  -h | --help) usage; exit 0 ;;
  '') ;;
  *) usage >&2; exit 2 ;;
esac
if [[ $mode == check ]]; then
  engine_up || { say "engine: not answering"; exit 1; }
  say "engine: up ($(docker info -f 'server {{.ServerVersion}}, storage {{.Driver}}'))"
  image_ok || { say "image $IMAGE: missing"; exit 1; }
  say "image $IMAGE: present"; exit 0
fi
[[ $(id -u) -eq 0 ]] || die "must run as root"
exec 9>/run/lock/multicloud-setup-engine.lock
flock -w 900 9 || die "another setup-engine run holds /run/lock/multicloud-setup-engine.lock"

rm_tree() { # unmount anything debootstrap left mounted below $1, then delete it
  findmnt -rn -o TARGET | grep -F "$1/" | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$1" "$1.log"
}
cleanup() {
  if [[ -n $SMOKE ]]; then
    docker rm -f "$SMOKE" >/dev/null 2>&1 || true
    docker network rm "$SMOKE" >/dev/null 2>&1 || true
  fi
  if [[ -n $ROOTFS ]]; then rm_tree "$ROOTFS"; fi
}
trap cleanup EXIT
for d in "$TMP_PREFIX"*; do
  if [[ -d $d ]]; then say "removing leftover $d"; rm_tree "$d"; fi
done

# 1. Debian packages
apt_get() {
  local i
  for i in 1 2 3 4; do
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=60 "$@" && return 0
    say "apt-get $1 failed (attempt $i/4), retrying in 10 s"; sleep 10
  done
  die "apt-get $* failed"
}
read -ra extra <<<"${MULTICLOUD_APT_EXTRA:-}"
missing=()
for p in docker.io debootstrap "${extra[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt_get update >/dev/null
  apt_get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. dockerd (no systemd here: start it directly and wait for it to answer)
start_dockerd() {
  say "starting dockerd ${*:-(default flags)} (log: $LOG)"
  nohup dockerd "$@" >>"$LOG" 2>&1 </dev/null &
  local pid=$! _
  for _ in $(seq 60); do
    engine_up && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 1
  done
  kill "$pid" 2>/dev/null || true; wait "$pid" || true; return 1
}
if ! engine_up && pgrep -x dockerd >/dev/null; then
  say "dockerd is running but not answering yet; waiting up to 60 s"
  for _ in $(seq 60); do engine_up && break; sleep 1; done
  engine_up || die "dockerd runs but 'docker info' does not answer; see $LOG"
fi
if ! engine_up; then
  read -ra flags <<<"${MULTICLOUD_DOCKERD_FLAGS:-}"
  mkdir -p "$(dirname "$LOG")"; touch "$LOG"
  until mark=$(wc -l <"$LOG"); start_dockerd "${flags[@]}"; do
    new=$(tail -n "+$((mark + 1))" "$LOG")
    if grep -qiE 'iptables|xtables|nat chain' <<<"$new" && [[ " ${flags[*]} " != *" --iptables=false "* ]]; then
      if [[ $(readlink -f /etc/alternatives/iptables) != */xtables-legacy-multi ]]; then
        say "iptables (nft) failed; switching to iptables-legacy"
        update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null
      else
        say "WARNING: iptables unusable; --iptables=false (containers lose NAT egress)"; flags+=(--iptables=false)
      fi
    elif grep -qiE 'overlay|graphdriver|storage.driver' <<<"$new" && [[ " ${flags[*]} " != *vfs* ]]; then
      say "overlay2 storage failed; falling back to --storage-driver=vfs"; flags+=(--storage-driver=vfs)
    else
      tail -n 25 "$LOG" >&2; die "dockerd did not answer within 60 s (log above: $LOG)"
    fi
  done
  CHANGED=1
fi
say "engine up: $(docker info -f 'server {{.ServerVersion}}, storage {{.Driver}}')"

# 3. stand-in base image
apt_uri() { # first enabled host apt source URI serving suite $1, else $2
  local u="" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && u=$(awk -v s="$1" 'function fl() { if (!ok && u != "" && (" " su " ") ~ (" " s " ") && en != "no") { print u; ok = 1 } u = su = en = "" }
      FNR == 1 || /^[ \t]*$/ { fl() } tolower($1) == "uris:" { u = $2 } tolower($1) == "enabled:" { en = tolower($2) }
      tolower($1) == "suites:" { $1 = ""; su = $0 " " } END { fl() }' "$f" | head -n1)
    [[ -n $u ]] && break
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -z $u && -f $f ]] && u=$(awk -v s="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit } }' "$f")
  done
  echo "${u:-$2}"
}
build_image() {
  local mirror security f p ok
  mirror=$(apt_uri bookworm http://deb.debian.org/debian)
  security=$(apt_uri bookworm-security http://deb.debian.org/debian-security)
  ROOTFS=$(mktemp -d "${TMP_PREFIX}XXXXXX")
  say "building $IMAGE: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$ROOTFS.log" 2>&1 ||
    { tail -n 20 "$ROOTFS.log" >&2; die "debootstrap failed"; }
  install -D -m 644 "$CA" "$ROOTFS$CA" # TLS for pip/apt inside builds (custom CAs included)
  mkdir -p "$ROOTFS/usr/local/share/ca-certificates" # survive update-ca-certificates in builds
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/" 2>/dev/null || true
  rm -f "$ROOTFS/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' \
    "$mirror" "bookworm bookworm-updates" "$security" bookworm-security >"$ROOTFS/etc/apt/sources.list.d/debian.sources"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n' \
    >"$ROOTFS/etc/apt/apt.conf.d/90multicloud-slim"
  p='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    "$p" "$p" >"$ROOTFS/etc/apt/apt.conf.d/docker-clean"
  printf 'path-exclude %s\n' '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/info/*' '/usr/share/locale/*' >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim"
  printf 'path-include /usr/share/doc/*/copyright\npath-include /usr/share/locale/locale.alias\n' >>"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim"
  for f in /etc/pip.conf /etc/xdg/pip/pip.conf; do # copy only if every file it names exists in the image
    [[ -f $f ]] || continue
    ok=1
    while read -r p; do [[ -e $ROOTFS$p ]] || ok=0; done < <(grep -oE '(^|[=[:space:]])/[^[:space:]]+' "$f" | sed 's/^[=[:space:]]*//')
    if ((ok)); then install -D -m 644 "$f" "$ROOTFS$f"; say "copied $f into the image"; else say "skipped $f (names files absent from the image)"; fi
  done
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
  : >"$ROOTFS/etc/resolv.conf"; : >"$ROOTFS/etc/hostname"
  tar -C "$ROOTFS" --numeric-owner -c . | docker import -c 'CMD ["bash"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >/dev/null
  rm_tree "$ROOTFS"; ROOTFS=""
}
if image_ok; then say "image $IMAGE present"; else build_image; CHANGED=1; say "image $IMAGE built"; fi

# 4. smoke test: alias DNS on a user network, a published port from the host, egress to the mirror
smoke_test() {
  local host port out _
  host=$(apt_uri bookworm http://deb.debian.org/debian | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
  SMOKE=multicloud-smoke-$$
  docker network create "$SMOKE" >/dev/null
  docker run -d --name "$SMOKE" --network "$SMOKE" --network-alias smoke-web -p 127.0.0.1::8080 "$IMAGE" perl -MIO::Socket::INET \
    -e '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die $!; while ($c = $s->accept) { print $c "smoke-ok\n"; close $c }' >/dev/null
  out=$(docker run --rm --network "$SMOKE" "$IMAGE" perl -MIO::Socket::INET -e 'for (1 .. 20) { $c = IO::Socket::INET->new("smoke-web:8080") and last; sleep 1 }
    $c or die "alias: $@\n"; print <$c>; IO::Socket::INET->new(PeerAddr => "$ARGV[0]:80", Timeout => 10) or die "egress to $ARGV[0]: $@\n"' "$host" 2>&1) ||
    die "container networking failed: $out"
  port=$(docker port "$SMOKE" 8080/tcp | head -n1 | sed 's/.*://')
  for _ in $(seq 20); do
    out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; cat <&3' _ "$port" 2>/dev/null) || true
    [[ $out == smoke-ok ]] && break; sleep 0.5
  done
  [[ $out == smoke-ok ]] || die "published port 127.0.0.1:$port not reachable from the host"
  say "smoke test ok (network alias, published port 127.0.0.1:$port, egress to $host)"
}
if ((CHANGED)) || [[ $mode == verify ]]; then smoke_test; fi
say "ready"
