#!/bin/sh
# Makes a self-signed TLS certificate and key for nginx in DIR, unless both are
# already there (a real certificate mounted by the operator, or the one made at
# an earlier start): it never overwrites. docker compose runs it once before
# nginx starts (service tls-cert); by hand:
#   nginx/self-signed-cert.sh DIR [SERVER_NAME]
# SERVER_NAME (default localhost) goes into the subject and the alternative
# names, with localhost and 127.0.0.1 beside it. Browsers warn about a
# self-signed certificate: mount a real one for anything but a trial.
set -eu

dir=${1:?usage: self-signed-cert.sh DIR [SERVER_NAME]}
name=${2:-localhost}
cert="$dir/tls.crt"
key="$dir/tls.key"

if [ -s "$cert" ] && [ -s "$key" ]; then
  echo "self-signed-cert: $cert and $key exist; keeping them"
  exit 0
fi
# Half a pair is a mistake in what was mounted: do not paper over it.
if [ -e "$cert" ] || [ -e "$key" ]; then
  echo "self-signed-cert: only one of $cert and $key exists (or one is empty); mount both" >&2
  exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
  echo "self-signed-cert: no openssl here; mount a certificate and key into $dir instead" >&2
  exit 1
fi

case "$name" in
  *[!A-Za-z0-9.-]*) echo "self-signed-cert: SERVER_NAME must be a DNS name: $name" >&2; exit 1 ;;
esac
alt="DNS:$name"
[ "$name" = localhost ] || alt="$alt,DNS:localhost"
alt="$alt,IP:127.0.0.1"

mkdir -p "$dir"
# Written beside the final names and renamed into place, so nginx never reads
# a half-written file.
tmp=$(mktemp -d "$dir/.self-signed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
umask 077
# openssl's chatter (a "-----" line) goes to the log only when it fails.
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -days 365 -subj "/CN=$name" -addext "subjectAltName=$alt" \
  -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>"$tmp/openssl.log"; then
  cat "$tmp/openssl.log" >&2
  exit 1
fi
chmod 644 "$tmp/tls.crt"
mv "$tmp/tls.key" "$key"
mv "$tmp/tls.crt" "$cert"
echo "self-signed-cert: made a self-signed certificate for $name in $cert (valid 365 days)"
