#!/usr/bin/env sh
# Renders nginx/trackcomments.conf.template for a host without docker, e.g.
#   NGINX_UPSTREAM_SERVERS='server 127.0.0.1:3001 max_fails=0; server 127.0.0.1:3002 max_fails=0;' \
#     nginx/render.sh > /etc/nginx/conf.d/trackcomments.conf
# Only the NGINX_* names below are substituted; nginx's own $variables stay.
# Defaults match docker-compose.yml.
set -eu
: "${NGINX_LISTEN:=80}"
# Not /dev/stdout here: under systemd, stdout is a socket, which nginx cannot open.
: "${NGINX_ACCESS_LOG:=/var/log/nginx/trackcomments.access.log}"
: "${NGINX_UPSTREAM_SERVERS:?set NGINX_UPSTREAM_SERVERS, e.g. server 127.0.0.1:3000;}"
: "${NGINX_STREAMS_PER_CLIENT:=40}"
: "${NGINX_WRITES_PER_SECOND:=20}"
: "${NGINX_WRITE_BURST:=40}"
export NGINX_LISTEN NGINX_ACCESS_LOG NGINX_UPSTREAM_SERVERS NGINX_STREAMS_PER_CLIENT NGINX_WRITES_PER_SECOND NGINX_WRITE_BURST
exec envsubst '${NGINX_LISTEN} ${NGINX_ACCESS_LOG} ${NGINX_UPSTREAM_SERVERS} ${NGINX_STREAMS_PER_CLIENT} ${NGINX_WRITES_PER_SECOND} ${NGINX_WRITE_BURST}' \
  < "$(dirname "$0")/trackcomments.conf.template"
