#!/usr/bin/env bash
# Make a local certificate authority and a server certificate for the broker's TLS listener (and the
# staff page over HTTPS). Dashboards trust ca.crt; nothing here leaves the kiosk but ca.crt.
#
#   kiosk/broker/make-certs.sh OUT_DIR HOSTNAME [IP ...]
#
# OUT_DIR gets ca.key ca.crt server.key server.crt (keys mode 600). An existing CA is reused, so a new
# server certificate (another name, renewal) stays trusted by dashboards that already hold ca.crt.
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 OUT_DIR HOSTNAME [IP ...]" >&2
  exit 2
fi
out=$1; host=$2; shift 2
days_ca=${CA_DAYS:-3650}
days_server=${SERVER_DAYS:-825}
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
    -days "$days_ca" -subj "/CN=EmotionAI kiosk local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
fi

san="DNS:$host,DNS:localhost,IP:127.0.0.1"
for ip in "$@"; do san="$san,IP:$ip"; done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 \
  -subj "/CN=$host" -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -days "$days_server" -sha256 \
  -extfile <(printf "subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n" "$san") \
  -out "$out/server.crt" 2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"
chmod 644 "$out/ca.crt" "$out/server.crt"
echo "CA: $out/ca.crt (give to dashboards)  server: $out/server.crt for $san"
