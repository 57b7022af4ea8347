provider "berth" {
  # Where the engines are: connection details live here, never in state.
  engines = {
    node1 = { endpoint = "unix:///var/run/docker.sock" }
    node2 = {
      endpoint = "tcp://10.0.0.12:2376" # TLS when tls is set, always verified
      tls = {
        ca_pem   = file("ca.pem")
        cert_pem = file("cert.pem")
        key_pem  = var.node2_key
      }
    }
    node3 = { endpoint = "ssh://ops@10.0.0.13" }
  }
}

variable "node2_key" {
  type      = string
  sensitive = true
}
