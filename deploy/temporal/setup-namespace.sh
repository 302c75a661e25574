#!/bin/sh
# Creates the namespace and the custom search attributes operators filter failovers by in the Web UI
# (VmsServerId='rec-01', VmsFolder='BrokenRecorders'), then waits until the frontend accepts queries on them.
# The worker registers missing ones too at start; doing it here means the UI can filter before the first
# worker ever connects. Idempotent. Used by scripts/production-stack.sh and docker-compose.yml.
# TLS: TEMPORAL_TLS_CA_PATH, TEMPORAL_TLS_CERT_PATH, TEMPORAL_TLS_KEY_PATH, TEMPORAL_TLS_SERVER_NAME (the
# names infra/config.ts reads), passed to the Temporal CLI as its flags.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${NAMESPACE_RETENTION:?}"

cli() {
  temporal "$@" --address "$TEMPORAL_ADDRESS" \
    ${TEMPORAL_TLS_CA_PATH:+--tls-ca-path "$TEMPORAL_TLS_CA_PATH"} \
    ${TEMPORAL_TLS_CERT_PATH:+--tls-cert-path "$TEMPORAL_TLS_CERT_PATH"} \
    ${TEMPORAL_TLS_KEY_PATH:+--tls-key-path "$TEMPORAL_TLS_KEY_PATH"} \
    ${TEMPORAL_TLS_SERVER_NAME:+--tls-server-name "$TEMPORAL_TLS_SERVER_NAME"}
}

attempts=0
until cli operator cluster health >/dev/null 2>&1; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS does not answer" >&2; exit 1; }
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"
  sleep 2
done

cli operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 ||
  cli operator namespace create --namespace "$NAMESPACE" --retention "$NAMESPACE_RETENTION"

# A new namespace reaches every server cache after a few seconds.
attempts=0
until existing=$(cli operator search-attribute list --namespace "$NAMESPACE" 2>/dev/null); do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 30 ] || { echo "namespace $NAMESPACE is still not usable" >&2; exit 1; }
  sleep 2
done
query=""
for name in VmsServerId VmsFolder VmsRole VmsFailoverTarget; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    cli operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type Keyword
  fi
  query="${query:+$query AND }$name = 'any'"
done

# Workflows started with a search attribute the frontend does not know yet are refused.
attempts=0
until cli workflow list --namespace "$NAMESPACE" --query "$query" --limit 1 >/dev/null 2>&1; do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 60 ] || { echo "the search attributes are still unknown to the frontend" >&2; exit 1; }
  sleep 1
done
echo "namespace $NAMESPACE ready"
