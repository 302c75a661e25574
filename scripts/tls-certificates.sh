#!/usr/bin/env bash
# Generates the TLS material of the production stack into DIR (default .data/production-stack/tls):
#   ca.pem, ca-key.pem                   a local certificate authority (10 years)
#   server.pem, server-key.pem           the Temporal frontend: localhost, 127.0.0.1, temporal (the compose
#                                        service) and the names in TLS_SERVER_NAMES (comma-separated)
#   <client>.pem, <client>-key.pem       client certificates for mTLS: vms (worker, CLI, heartbeat agents),
#                                        temporal-ui (the Web UI server), temporal-internal (the Temporal
#                                        server's own system worker)
# Files that exist are kept: running it again changes nothing. --force makes everything anew (every client
# then needs the new ca.pem). Private keys are readable by their owner only.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$PROJECT_ROOT"

force=false
dir=""
for argument in "$@"; do
  case "$argument" in
    --force) force=true ;;
    -*) die "unknown option $argument (expected --force)" ;;
    *) dir="$argument" ;;
  esac
done
dir="${dir:-$DATA_DIR/production-stack/tls}"
command -v openssl >/dev/null || die "openssl is required to generate certificates (apt-get install openssl)."

CLIENTS=(vms temporal-ui temporal-internal)
VALID_DAYS=825

mkdir -p "$dir"
chmod 0700 "$dir"
if [ "$force" = true ]; then
  rm -f "$dir"/*.pem
fi

# A key readable by its owner only, created before anything is written into it.
new_key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

# Signs a certificate for $1 (file stem) with subject CN $2, extended key usage $3 and alternative names $4.
issue() {
  local stem="$1" common_name="$2" usage="$3" alt_names="$4"
  local extensions
  extensions="$(mktemp)"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [ -n "$alt_names" ]; then echo "subjectAltName=$alt_names"; fi
  } >"$extensions"
  new_key "$dir/$stem-key.pem"
  openssl req -new -key "$dir/$stem-key.pem" -subj "/O=vms-failover/CN=$common_name" 2>/dev/null |
    openssl x509 -req -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
      -days "$VALID_DAYS" -sha256 -extfile "$extensions" -out "$dir/$stem.pem" 2>/dev/null
  rm -f "$extensions"
}

if [ ! -f "$dir/ca.pem" ] || [ ! -f "$dir/ca-key.pem" ]; then
  new_key "$dir/ca-key.pem"
  openssl req -new -x509 -key "$dir/ca-key.pem" -subj "/O=vms-failover/CN=vms-failover local CA" \
    -days 3650 -sha256 -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem" 2>/dev/null
  # A new CA invalidates every certificate it did not sign.
  rm -f "$dir/server.pem"
  for client in "${CLIENTS[@]}"; do rm -f "$dir/$client.pem"; done
  say "certificate authority created: ${dir#"$PROJECT_ROOT"/}/ca.pem"
fi

if [ ! -f "$dir/server.pem" ]; then
  alt_names="DNS:localhost,IP:127.0.0.1,DNS:temporal"
  IFS=',' read -r -a extra_names <<<"${TLS_SERVER_NAMES:-}"
  for name in "${extra_names[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ ]]; then alt_names+=",IP:$name"; else alt_names+=",DNS:$name"; fi
  done
  issue server "localhost" serverAuth "$alt_names"
  say "server certificate created for $alt_names"
fi

for client in "${CLIENTS[@]}"; do
  if [ ! -f "$dir/$client.pem" ]; then
    issue "$client" "$client" clientAuth ""
  fi
done

for stem in server "${CLIENTS[@]}"; do
  openssl verify -CAfile "$dir/ca.pem" "$dir/$stem.pem" >/dev/null ||
    die "${dir#"$PROJECT_ROOT"/}/$stem.pem is not signed by ca.pem: run again with --force"
done
