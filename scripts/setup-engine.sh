#!/usr/bin/env bash
# Usage: scripts/setup-engine.sh [--check | --verify | --help]     (run as root; idempotent)
# Prepares the local Docker engine on a Debian bookworm host without systemd or Docker Hub:
# installs docker.io, debootstrap, docker-registry (the aws emulator runs it for ECR pushes;
# nothing here starts it) and $MULTICLOUD_APT_EXTRA; starts dockerd (extra flags from
# $MULTICLOUD_DOCKERD_FLAGS, log $MULTICLOUD_DOCKERD_LOG or /var/log/multicloud-dockerd.log);
# builds a stand-in debian:bookworm-slim with debootstrap. See DESIGN.md "This machine and CI".
#   --check   report only; exit 1 unless the engine answers, the image exists and docker-registry is installed
#   --verify  run the container smoke test even when nothing had to change
set -euo pipefail

IMAGE=debian:bookworm-slim
LOG=${MULTICLOUD_DOCKERD_LOG:-/var/log/multicloud-dockerd.log}
APT_LOG=/var/log/multicloud-setup-apt.log
CA=/etc/ssl/certs/ca-certificates.crt
LOCK=/run/lock/multicloud-setup-engine.lock
TMP_PREFIX=/var/tmp/multicloud-rootfs.
ROOTFS="" SMOKE="" CHANGED=0

say() { printf 'setup-engine: %s\n' "$*"; }
die() { printf 'setup-engine: ERROR: %s\n' "$*" >&2; exit 1; }
engine_up() { timeout 10 docker info >/dev/null 2>&1; }
image_ok() { docker image inspect "$IMAGE" >/dev/null 2>&1; }
engine_desc() { docker info -f 'server {{.ServerVersion}}, storage {{.Driver}}'; }

case ${1:-} in
  --check)
    engine_up || { say "engine: not answering"; exit 1; }
    say "engine: up ($(engine_desc))"
    image_ok || { say "image $IMAGE: missing"; exit 1; }
    say "image $IMAGE: present"
    command -v docker-registry >/dev/null || { say "docker-registry: missing"; exit 1; }
    say "docker-registry: present"; exit 0 ;;
  -h | --help) sed -n '2,/^set /{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
  --verify | '') ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root"
exec 9>"$LOCK"
flock -w 900 9 || die "another run holds $LOCK"

rm_tree() { # unmount whatever a killed debootstrap left mounted below $1, then delete it
  findmnt -rn -o TARGET | grep -F "$1/" | sort -r | xargs -r -n1 umount -l || true
  rm -rf --one-file-system "$1" "$1.log"
}
cleanup() {
  if [[ -n $SMOKE ]]; then docker rm -f "$SMOKE" >/dev/null 2>&1 || true; docker network rm "$SMOKE" >/dev/null 2>&1 || true; fi
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
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=60 "$@" >>"$APT_LOG" 2>&1 && return 0
    tail -n 3 "$APT_LOG" >&2; say "apt-get $1 failed (attempt $i/4, log $APT_LOG), retrying in 10 s"; sleep 10
  done
  die "apt-get $* failed"
}
read -ra extra <<<"${MULTICLOUD_APT_EXTRA:-}"
missing=()
for p in docker.io debootstrap docker-registry "${extra[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt_get update
  apt_get install -y --no-install-recommends "${missing[@]}"
fi

# 2. dockerd: no systemd here, so start it directly; fall back on flags only when the log says so
wait_engine() { # until `docker info` answers (0) or dockerd pid $1 exits / 60 s pass (1)
  local _
  for _ in $(seq 60); do engine_up && return 0; kill -0 "$1" 2>/dev/null || return 1; sleep 1; done
  return 1
}
start_dockerd() {
  say "starting dockerd ${*:-(default flags)}, log $LOG"
  nohup dockerd "$@" >>"$LOG" 2>&1 </dev/null 9>&- & # 9>&-: dockerd must not inherit our lock
  wait_engine $! && return 0
  kill $! 2>/dev/null || true; return 1
}
if ! engine_up && pid=$(pgrep -xo dockerd); then # e.g. started moments ago by someone else
  say "dockerd (pid $pid) runs but does not answer yet; waiting up to 60 s"
  wait_engine "$pid" || die "dockerd (pid $pid) runs but 'docker info' does not answer (log: $LOG)"
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
      else say "WARNING: no usable iptables; --iptables=false (no NAT egress)"; flags+=(--iptables=false); fi
    elif grep -qiE 'overlay|graphdriver|storage.driver' <<<"$new" && [[ " ${flags[*]} " != *vfs* ]]; then
      say "overlay2 failed; falling back to --storage-driver=vfs"; flags+=(--storage-driver=vfs)
    else
      tail -n 25 "$LOG" >&2; die "dockerd did not answer within 60 s (log: $LOG)"
    fi
  done
  CHANGED=1
fi
say "engine up: $(engine_desc)"

# 3. stand-in base image
apt_uri() { # URI of the host's first enabled apt source for suite $1, else $2
  local u="" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -z $u && -f $f ]] && u=$(awk -v s="$1" 'function fl() { if (!ok && u != "" && su ~ (" " s " ") && en != "no") { print u; ok = 1 }; u = su = en = "" }
      FNR == 1 || /^[ \t]*$/ { fl() } tolower($1) == "uris:" { u = $2 } tolower($1) == "enabled:" { en = tolower($2) }
      tolower($1) == "suites:" { $1 = ""; su = $0 " " } END { fl() }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -z $u && -f $f ]] && u=$(awk -v s="$1" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i + 1) == s) { print $i; exit } }' "$f")
  done
  echo "${u:-$2}"
}
build_image() {
  local mirror f p ok
  mirror=$(apt_uri bookworm http://deb.debian.org/debian)
  ROOTFS=$(mktemp -d "${TMP_PREFIX}XXXXXX")
  say "building $IMAGE: debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$ROOTFS" "$mirror" >"$ROOTFS.log" 2>&1 ||
    { tail -n 20 "$ROOTFS.log" >&2; die "debootstrap failed"; }
  install -D -m 644 "$CA" "$ROOTFS$CA" # TLS (incl. this host's custom CAs) for pip/apt in builds
  # keep custom CAs when a build installs ca-certificates (its update-ca-certificates rewrites $CA)
  install -m 644 -D -t "$ROOTFS/usr/local/share/ca-certificates" /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
  rm -f "$ROOTFS/etc/apt/sources.list"
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n' \
    "$mirror" "bookworm bookworm-updates" "$(apt_uri bookworm-security http://deb.debian.org/debian-security)" \
    bookworm-security >"$ROOTFS/etc/apt/sources.list.d/debian.sources"
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n' \
    >"$ROOTFS/etc/apt/apt.conf.d/docker-slim"
  p='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  printf 'DPkg::Post-Invoke { %s };\nAPT::Update::Post-Invoke { %s };\nDir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' \
    "$p" "$p" >"$ROOTFS/etc/apt/apt.conf.d/docker-clean"
  printf 'path-exclude /usr/share/%s/*\n' doc man info locale >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim"
  printf 'path-include /usr/share/%s\n' 'doc/*/copyright' locale/locale.alias >>"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim"
  find "$ROOTFS"/usr/share/{doc,man,info,locale} -type f ! -name copyright ! -name locale.alias -delete 2>/dev/null || true
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

# 4. smoke test (after any change, or --verify): alias DNS on a user network, egress, published port
smoke_test() {
  local url hp port out _
  url=$(apt_uri bookworm http://deb.debian.org/debian); hp=${url#*://}; hp=${hp%%/*}
  if [[ $hp != *:* && $url == https:* ]]; then hp+=:443; elif [[ $hp != *:* ]]; then hp+=:80; fi
  SMOKE=multicloud-smoke-$$
  docker network create "$SMOKE" >/dev/null
  docker run -d --name "$SMOKE" --network "$SMOKE" --network-alias smoke-web -p 127.0.0.1::8080 "$IMAGE" perl -MIO::Socket::INET -e \
    '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die $!; while ($c = $s->accept) { print $c "smoke-ok\n"; close $c }' >/dev/null
  out=$(docker run --rm --network "$SMOKE" "$IMAGE" perl -MIO::Socket::INET -e 'for (1 .. 20) { $c = IO::Socket::INET->new("smoke-web:8080") and last; sleep 1 }
    $c or die "alias smoke-web: $@\n"; print <$c>; IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 10) or die "egress: $@\n"' "$hp" 2>&1) ||
    die "container networking failed: $out"
  port=$(docker port "$SMOKE" 8080/tcp | head -n1); port=${port##*:}
  for _ in $(seq 20); do
    out=$(exec 3<>"/dev/tcp/127.0.0.1/$port" && timeout 5 cat <&3) 2>/dev/null || true
    [[ $out == smoke-ok ]] && break; sleep 0.5
  done
  [[ $out == smoke-ok ]] || die "published port 127.0.0.1:$port not reachable from the host"
  say "smoke test ok: network alias, egress to $hp, published port 127.0.0.1:$port"
}
if ((CHANGED)) || [[ ${1:-} == --verify ]]; then smoke_test; fi
say "ready"
