terraform {
  required_providers {
    berth = {
      source = "berthsh/berth"
    }
  }
}

# Embedded mode: the provider block lists the engines. Connection details
# live here and never in state.
provider "berth" {
  engines = {
    # The local engine, over its socket.
    node1 = { endpoint = "unix:///var/run/docker.sock" }
    # A remote engine over TCP with TLS: the engine's certificate is always
    # verified. Without `tls`, tcp:// is plaintext: use it only on a trusted
    # network.
    node2 = {
      endpoint = "tcp://10.0.0.12:2376"
      tls = {
        ca_pem   = var.ca_pem
        cert_pem = var.client_cert_pem
        key_pem  = var.client_key_pem
      }
    }
    # A remote engine over SSH: needs a local `ssh` client, a key or agent
    # that logs in as `ops`, and the `docker` CLI on the remote host.
    node3 = { endpoint = "ssh://ops@10.0.0.13" }
  }
}

variable "ca_pem" {
  type        = string
  description = "PEM of the CA that signed node2's certificate."
}

variable "client_cert_pem" {
  type        = string
  description = "PEM of the client certificate node2 accepts."
}

variable "client_key_pem" {
  type        = string
  sensitive   = true
  description = "PEM of the client key."
}
