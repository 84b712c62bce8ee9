#!/bin/sh
# Installs eventsink as a systemd service from an extracted release archive; run as root from anywhere:
#   sudo ./deploy/install.sh
# The binary must match the archive's eventsink.sha256. Installs /usr/local/bin/eventsink, the unit
# /etc/systemd/system/eventsink.service, the settings /etc/eventsink/eventsink.env only if there are none yet
# (an operator's settings are never overwritten), and /etc/eventsink/credentials/ for secrets (root only);
# then prints the next steps. Run again to upgrade.
#   --root DIR   install under DIR instead of / and do not call systemctl (for a test, or an image)
set -eu

usage="usage: install.sh [--root DIR]"
die() {
	echo "install.sh: $*" >&2
	exit 1
}

root=
while [ $# -gt 0 ]; do
	case $1 in
	--root)
		if [ $# -lt 2 ] || [ -z "$2" ]; then die "--root needs a directory; $usage"; fi
		root=${2%/}
		shift 2
		;;
	-h | --help)
		echo "$usage"
		exit 0
		;;
	*) die "unknown argument '$1'; $usage" ;;
	esac
done
if [ -n "$root" ]; then
	[ -d "$root" ] || die "--root $root is not a directory"
elif [ "$(id -u)" -ne 0 ]; then
	die "run as root (sudo $0): it installs into /usr/local/bin, /etc/systemd/system and /etc/eventsink"
fi

# The archive's top directory: this script is its deploy/install.sh.
archive=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$archive/eventsink.sha256" ] ||
	die "no $archive/eventsink.sha256: run this script from an extracted release archive (make release-archive)"
if ! (cd "$archive" && sha256sum --check --status --strict eventsink.sha256); then
	die "$archive/eventsink does not match eventsink.sha256 (damaged or replaced): nothing was installed"
fi
said=$("$archive/eventsink" --version 2>&1) ||
	die "$archive/eventsink does not run on this $(uname -m) machine (an archive of another architecture?): nothing was installed"
version=$(printf '%s\n' "$said" | head -n 1)

credentials=/etc/eventsink/credentials
env_file=/etc/eventsink/eventsink.env
unit=/etc/systemd/system/eventsink.service

# The binary is replaced by a rename, so that a running eventsink keeps its file and a failed copy leaves the
# old one in place.
install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/etc/eventsink"
install -m 0755 "$archive/eventsink" "$root/usr/local/bin/.eventsink.new"
mv -f "$root/usr/local/bin/.eventsink.new" "$root/usr/local/bin/eventsink"
install -m 0644 "$archive/deploy/eventsink.service" "$root$unit"
if [ -e "$root$env_file" ]; then
	env_said="kept as it was (the new release's example: $archive/deploy/eventsink.env)"
else
	install -m 0644 "$archive/deploy/eventsink.env" "$root$env_file"
	env_said="the example: every option commented out"
fi
install -d -m 0700 "$root$credentials"
chmod 0700 "$root$credentials"

running=
if [ -z "$root" ]; then
	systemctl daemon-reload
	if systemctl is-active --quiet eventsink; then running=yes; fi
fi

cat <<EOF
Installed $version:
  /usr/local/bin/eventsink
  $unit
  $env_file  $env_said
  $credentials/  for secrets, root only
EOF
if [ -n "$running" ]; then
	cat <<EOF

eventsink is running the binary it started with; to run this one:
  systemctl restart eventsink
EOF
	exit 0
fi
cat <<EOF

Next steps, as root:
1. Settings: set at least EVENTSINK_EVENTSTORE_URL and EVENTSINK_BROKERS (all options are there):
     editor $env_file
2. Secrets: each is a root-only file in $credentials/ named for its credential, which the
   service loads with LoadCredential=. For the OAuth2 client secret (eventstore-token and
   kafka-sasl-password likewise; TLS keys: see the comments in $unit):
     (umask 077; printf '%s' "\$SECRET" >$credentials/oauth-client-secret)
     install -d /etc/systemd/system/eventsink.service.d
     printf '[Service]\nLoadCredential=oauth-client-secret:$credentials/oauth-client-secret\n' \\
       >/etc/systemd/system/eventsink.service.d/credentials.conf
     systemctl daemon-reload
   (a drop-in, so that the next install.sh, which replaces the unit, keeps it)
3. Check the brokers, the topic and the EventStore with the service's settings, user and credentials:
     systemd-run --pipe --wait -p DynamicUser=yes -p EnvironmentFile=$env_file \\
       -p LoadCredential=oauth-client-secret:$credentials/oauth-client-secret \\
       /usr/local/bin/eventsink check
4. Start it, now and at every boot:
     systemctl enable --now eventsink
5. See it ready:
     curl -s http://127.0.0.1:8095/readyz
EOF
