#!/usr/bin/env bash
# Builds the Debian package and checks it the way an administrator meets it:
#   1. a release build; the release binary writes the man page and the
#      shell completions into target/release/pkg/;
#   2. `cargo deb --no-build` packs binary (stripped, line tables apart),
#      unit, sysusers/tmpfiles snippets, configuration (conffiles), man
#      page and completions;
#   3. the package is installed with dpkg into a throwaway root (maintainer
#      scripts run with DPKG_ROOT set, so the attendd user and folders are
#      created there), or, where dpkg cannot install, extracted;
#   4. the installed binary checks the installed configuration, and the
#      script checks each file, the conffiles, Recommends and the stripping.
# Needs cargo-deb (`cargo install cargo-deb --locked`). The release build
# takes long: .ci/run runs this under CI=true only. PACKAGE_PROFILE=dev
# packs a debug build instead, to try this script quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-target}"
profile="${PACKAGE_PROFILE:-release}"
fail() { echo "package: FAILED: $*" >&2; exit 1; }

if [ "$profile" = release ]; then
  cargo build --release --locked
  out="$target/release"
else
  cargo build --profile "$profile" --locked
  out="$target/debug"
fi
bin="$out/attendd"
pkg="$out/pkg"
mkdir -p "$pkg"
"$bin" manpage | gzip -9n > "$pkg/attendd.8.gz"
"$bin" completions bash > "$pkg/attendd.bash"
"$bin" completions zsh > "$pkg/_attendd"
"$bin" completions fish > "$pkg/attendd.fish"

rm -f "$target"/debian/attendd_*.deb "$target"/debian/attendd-dbgsym_*
# Stripped binary; its debug symbols (line tables) in attendd-dbgsym.
cargo deb --no-build --locked --profile "$profile" --dbgsym --compress-debug-symbols=zlib
deb=$(ls "$target"/debian/attendd_*.deb | head -n1)
[ -f "$deb" ] || fail "no .deb in $target/debian"
ddeb=$(ls "$target"/debian/attendd-dbgsym_* 2>/dev/null | head -n1)
[ -n "$ddeb" ] || fail "no attendd-dbgsym package in $target/debian"
echo "package: built $deb ($(du -k "$deb" | cut -f1) KiB) and $ddeb ($(du -k "$ddeb" | cut -f1) KiB)"

# The control file.
control=$(dpkg-deb -f "$deb")
grep -q '^Package: attendd$' <<<"$control" || fail "package name"
grep -q '^Recommends: mosquitto' <<<"$control" || fail "Recommends: mosquitto missing"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mode=installed
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" \
  "$root/etc" "$root/usr/bin" "$root/usr/sbin"
touch "$root/var/lib/dpkg/status"
if ! dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root \
  --log=/dev/null --no-triggers -i "$deb"; then
  echo "package: dpkg could not install into $root; extracting and inspecting instead"
  mode=extracted
  rm -rf "${root:?}"/*
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$root/DEBIAN"
fi

for f in usr/bin/attendd usr/lib/systemd/system/attendd.service \
  usr/lib/sysusers.d/attendd.conf usr/lib/tmpfiles.d/attendd.conf \
  etc/attendd/attendd.toml etc/attendd/policies/seed-default.toml \
  usr/share/man/man8/attendd.8.gz usr/share/bash-completion/completions/attendd \
  usr/share/zsh/vendor-completions/_attendd usr/share/fish/vendor_completions.d/attendd.fish \
  usr/share/doc/attendd/attendd.env.example; do
  [ -e "$root/$f" ] || fail "/$f not in the package"
done

# Stripped binary; its line tables apart, in the dbgsym package under
# /usr/lib/debug/.build-id/, matching the binary's build id.
if readelf -S "$root/usr/bin/attendd" 2>/dev/null | grep -q '\.debug_line'; then
  fail "/usr/bin/attendd is not stripped"
fi
if find "$root/usr/lib/debug" -type f 2>/dev/null | grep -q .; then
  fail "debug symbols in the main package"
fi
dbgroot=$(mktemp -d)
dpkg-deb -x "$ddeb" "$dbgroot"
dbg=$(find "$dbgroot/usr/lib/debug" -type f -name '*.debug' | head -n1)
[ -n "$dbg" ] || { rm -rf "$dbgroot"; fail "no .debug file in $ddeb"; }
buildid=$(readelf -n "$root/usr/bin/attendd" 2>/dev/null | sed -n 's/.*Build ID: \([0-9a-f]*\).*/\1/p')
case "$dbg" in
  *"${buildid:2}.debug") ;;
  *) rm -rf "$dbgroot"; fail "debug file $dbg does not match build id $buildid" ;;
esac
readelf -S "$dbg" | grep -q '\.debug_line' || { rm -rf "$dbgroot"; fail "$dbg has no line tables"; }
echo "package: /usr/bin/attendd $(du -k "$root/usr/bin/attendd" | cut -f1) KiB stripped;" \
  "debug symbols ${dbg#"$dbgroot"} $(du -k "$dbg" | cut -f1) KiB"
rm -rf "$dbgroot"

# Conffiles: the configuration and every policy.
if [ "$mode" = installed ]; then
  conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' attendd)
else
  conffiles=$(cat "$root/DEBIAN/conffiles")
fi
for f in /etc/attendd/attendd.toml /etc/attendd/policies/seed-default.toml; do
  grep -q "$f" <<<"$conffiles" || fail "$f is not a conffile"
done

# The maintainer scripts made the user and the folders (in the root).
if [ "$mode" = installed ] && command -v systemd-sysusers >/dev/null; then
  grep -q '^attendd:' "$root/etc/passwd" || fail "postinst did not create the attendd user"
  [ -d "$root/var/lib/attendd" ] || fail "postinst did not create /var/lib/attendd"
fi

# Nothing enabled: no wants/ link.
if find "$root/etc/systemd" -name attendd.service 2>/dev/null | grep -q .; then
  fail "the package enabled attendd.service"
fi

# The man page and completions are what the binary says.
zcat "$root/usr/share/man/man8/attendd.8.gz" | grep -q '^\.TH attendd 8' || fail "man page header"
bash -n "$root/usr/share/bash-completion/completions/attendd" || fail "bash completion syntax"

# The installed binary accepts the installed configuration.
"$root/usr/bin/attendd" check-config --config "$root/etc/attendd/attendd.toml"
"$root/usr/bin/attendd" --version
echo "package: OK ($mode into a throwaway root)"
