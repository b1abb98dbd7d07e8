# syntax=docker/dockerfile:1
# trackcomments: one image for the app replicas and the one-shot migrator.
#   docker build -t trackcomments .
# Stages: deps (all packages) -> build (prisma generate + tsc) ;
#         prod-deps (runtime packages only) -> runtime (small, non-root).

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the postinstall hook (prisma generate) needs the sources,
# which are not copied yet; the build stage runs it explicitly. It also skips
# Prisma's engine download hooks, which this build never needs.
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json tsconfig.client.json ./
COPY prisma ./prisma
COPY src ./src
COPY public ./public
# "npm run build" = prisma generate (client into src/generated/prisma, no
# engine download) + tsc -p tsconfig.build.json (server, into dist/) +
# build:client (the demo page's script, into public/build/).
RUN npm run build

FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Everything owned by root and read-only for the app user; only ./data (the
# embedded database, unused when DATABASE_URL is set) is writable.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Migrations are read at run time (migrate service, embedded mode).
COPY prisma ./prisma
COPY --from=build /app/public ./public
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
# Liveness only; readiness (/readyz: database, bus, not draining) is what
# docker-compose.yml waits on. Node has fetch; the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# main.ts drains open streams on SIGTERM (SHUTDOWN_TIMEOUT_MS); node runs as
# PID 1 and handles it itself.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
