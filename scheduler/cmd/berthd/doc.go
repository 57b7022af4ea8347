// Command berthd is Berth's shared scheduling backend:
//
//	berthd serve --listen 127.0.0.1:8700 --data-dir /var/lib/berthd --engines engines.json \
//	             [--tokens tokens.json] [--tls-cert F --tls-key F [--client-ca F]]
//
// Every flag can also be given as a BERTHD_* environment variable
// (--data-dir as BERTHD_DATA_DIR); a flag on the command line wins. Without
// --tokens, BERTHD_ADMIN_TOKEN is the one admin token. Logs are JSON lines
// (log/slog) on stderr; the first says where berthd listens.
package main
