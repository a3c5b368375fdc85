#!/usr/bin/env bash
# Test certificates for the internal plane's mutual TLS (docs/security.md), made with openssl at
# test time. Never use them outside tests: the keys are unencrypted and live two days.
#
#   make_test_certificates.sh DIR
#       DIR/ca.{crt,key}, DIR/rogue-ca.{crt,key}: two CAs;
#       DIR/coordinator.{crt,key}: of ca, names g4serve-coordinator;
#       DIR/worker.{crt,key}: of ca, names g4serve-worker;
#       DIR/rogue-worker.{crt,key}: of rogue-ca, names g4serve-worker.
#   make_test_certificates.sh DIR ca NAME              another CA, DIR/NAME.{crt,key}
#   make_test_certificates.sh DIR issue NAME CA DNS    a leaf of DIR/CA, DIR/NAME.{crt,key}
# Leaves carry subjectAltName DNS:<DNS>, DNS:localhost, IP:127.0.0.1 and both TLS usages; keys
# are P-256 (openssl 3 writes PKCS#8, which gRPC reads).
set -euo pipefail

dir=$1
shift
mkdir -p "$dir"
cd "$dir"

make_ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}

issue() {  # NAME CA DNS
  local ext
  ext=$(mktemp "./$1.ext.XXXXXX")
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' "$3" >"$ext"
  printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' >>"$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -set_serial "0x$(openssl rand -hex 16)" \
    -out "$1.crt" -days 2 -extfile "$ext" 2>/dev/null
  rm -f "$1.csr" "$ext"
}

case "${1:-}" in
  "")
    make_ca ca
    make_ca rogue-ca
    issue coordinator ca g4serve-coordinator
    issue worker ca g4serve-worker
    issue rogue-worker rogue-ca g4serve-worker
    ;;
  ca) make_ca "$2" ;;
  issue) issue "$2" "$3" "$4" ;;
  *) echo "make_test_certificates.sh: unknown command $1" >&2; exit 2 ;;
esac
