#!/usr/bin/env sh
# Renders nginx/trackcomments.conf.template (and, for the HTTP->HTTPS
# redirect, nginx/http-redirect.conf.template) for a host without docker, e.g.
#   NGINX_UPSTREAM_SERVERS='server 127.0.0.1:3001 max_fails=0; server 127.0.0.1:3002 max_fails=0;' \
#     nginx/render.sh > /etc/nginx/conf.d/trackcomments.conf
# TLS + HTTP/2: also set NGINX_TLS_CERTIFICATE and NGINX_TLS_CERTIFICATE_KEY
# (PEM files); the redirect: also set NGINX_HTTP_REDIRECT_LISTEN (e.g. 80).
# NGINX_LISTEN here is the address only ("443", "127.0.0.1:8443"; default 443
# with TLS, else 80): this script adds the "ssl"/"http2" listen parameters.
# Only the NGINX_* names below are substituted; nginx's own $variables stay.
# Defaults match docker-compose.yml.
set -eu
dir=$(dirname "$0")
: "${NGINX_ACCESS_LOG:=/var/log/nginx/trackcomments.access.log}"
# (Not /dev/stdout above: under systemd, stdout is a socket, which nginx cannot open.)
: "${NGINX_UPSTREAM_SERVERS:?set NGINX_UPSTREAM_SERVERS, e.g. server 127.0.0.1:3000;}"
: "${NGINX_STREAMS_PER_CLIENT:=40}"
: "${NGINX_WRITES_PER_SECOND:=20}"
: "${NGINX_WRITE_BURST:=40}"
: "${NGINX_TLS_CERTIFICATE:=}"
: "${NGINX_TLS_CERTIFICATE_KEY:=}"
: "${NGINX_HTTP_REDIRECT_LISTEN:=}"

# "http2 on;" exists from nginx 1.25.1; before that HTTP/2 is a listen
# parameter (which 1.25.1+ still accepts, with a deprecation warning).
# NGINX_VERSION (e.g. 1.27.3) skips asking the nginx binary (NGINX_BIN).
http2_directive() {
  version=${NGINX_VERSION:-$("${NGINX_BIN:-nginx}" -v 2>&1 | sed -n 's|^nginx version: [^/]*/\([0-9.]*\).*|\1|p')}
  [ -n "$version" ] || { echo "render.sh: cannot tell the nginx version; set NGINX_VERSION" >&2; exit 1; }
  major=$(echo "$version" | cut -d. -f1)
  minor=$(echo "$version" | cut -d. -f2)
  patch=$(echo "$version" | cut -d. -f3)
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && { [ "$minor" -gt 25 ] || { [ "$minor" -eq 25 ] && [ "${patch:-0}" -ge 1 ]; }; }; }
}

if [ -n "$NGINX_TLS_CERTIFICATE" ] || [ -n "$NGINX_TLS_CERTIFICATE_KEY" ]; then
  [ -n "$NGINX_TLS_CERTIFICATE" ] && [ -n "$NGINX_TLS_CERTIFICATE_KEY" ] ||
    { echo "render.sh: set both NGINX_TLS_CERTIFICATE and NGINX_TLS_CERTIFICATE_KEY" >&2; exit 1; }
  files="ssl_certificate $NGINX_TLS_CERTIFICATE; ssl_certificate_key $NGINX_TLS_CERTIFICATE_KEY;"
  : "${NGINX_LISTEN:=443}"
  # The port browsers reach HTTPS on, for the redirect (when published elsewhere, set it).
  : "${NGINX_HTTPS_PORT:=${NGINX_LISTEN##*:}}"
  if http2_directive; then
    NGINX_LISTEN="$NGINX_LISTEN ssl"
    NGINX_TLS="http2 on; $files"
  else
    NGINX_LISTEN="$NGINX_LISTEN ssl http2"
    NGINX_TLS=$files
  fi
else
  [ -z "$NGINX_HTTP_REDIRECT_LISTEN" ] ||
    { echo "render.sh: NGINX_HTTP_REDIRECT_LISTEN needs TLS (NGINX_TLS_CERTIFICATE)" >&2; exit 1; }
  : "${NGINX_LISTEN:=80}"
  NGINX_TLS=''
  NGINX_HTTPS_PORT=''
fi

export NGINX_LISTEN NGINX_ACCESS_LOG NGINX_UPSTREAM_SERVERS NGINX_STREAMS_PER_CLIENT \
  NGINX_WRITES_PER_SECOND NGINX_WRITE_BURST NGINX_TLS NGINX_HTTP_REDIRECT_LISTEN NGINX_HTTPS_PORT
envsubst '${NGINX_LISTEN} ${NGINX_ACCESS_LOG} ${NGINX_UPSTREAM_SERVERS} ${NGINX_STREAMS_PER_CLIENT} ${NGINX_WRITES_PER_SECOND} ${NGINX_WRITE_BURST} ${NGINX_TLS}' \
  < "$dir/trackcomments.conf.template"
if [ -n "$NGINX_HTTP_REDIRECT_LISTEN" ]; then
  envsubst '${NGINX_HTTP_REDIRECT_LISTEN} ${NGINX_HTTPS_PORT}' < "$dir/http-redirect.conf.template"
fi
