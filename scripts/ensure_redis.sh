#!/usr/bin/env bash
# Make sure a Redis server answers on 127.0.0.1:$1: install it with apt-get when the binary is missing,
# start it when it is not running. Used by `make test` and CI.
set -euo pipefail
PORT="${1:-6379}"
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

if ! command -v redis-server >/dev/null; then
  echo "redis-server missing: installing with apt-get"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then
  echo "redis answers on port $PORT"
  exit 0
fi

echo "starting redis-server on port $PORT"
mkdir -p /tmp/prectr-redis-$PORT
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
  --dir /tmp/prectr-redis-$PORT --logfile /tmp/prectr-redis-$PORT/redis.log
for _ in $(seq 1 50); do
  if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then echo "redis started"; exit 0; fi
  sleep 0.1
done
echo "redis-server did not answer on port $PORT" >&2
exit 1
