#!/bin/sh
# Creates the namespace and the custom search attributes operators filter failovers by in the Web UI
# (VmsServerId='rec-01', VmsFolder='BrokenRecorders'). The worker registers missing ones too at start;
# doing it here means the UI can filter before the first worker ever connects. Idempotent.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}" "${NAMESPACE_RETENTION:?}"

until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"
  sleep 2
done

temporal operator namespace describe --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1 ||
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" \
    --retention "$NAMESPACE_RETENTION"

# A new namespace reaches every server cache after a few seconds.
attempts=0
until existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE"); do
  attempts=$((attempts + 1))
  [ "$attempts" -lt 30 ] || { echo "namespace $NAMESPACE is still not usable" >&2; exit 1; }
  sleep 2
done
for name in VmsServerId VmsFolder VmsRole VmsFailoverTarget; do
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name already registered"
  else
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" --namespace "$NAMESPACE" \
      --name "$name" --type Keyword
  fi
done
echo "namespace $NAMESPACE ready"
