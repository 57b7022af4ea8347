# Berth quickstart: three engines, one pool, a dozen containers of two
# services placed by the embedded scheduler. `make demo` passes the engine
# endpoints of three local engines; any three Docker engines will do.

terraform {
  required_providers {
    berth = { source = "berthsh/berth" }
  }
}

variable "node1_endpoint" {
  type        = string
  description = "Endpoint of the first engine, e.g. unix:///var/run/docker.sock."
}

variable "node2_endpoint" {
  type        = string
  description = "Endpoint of the second engine."
}

variable "node3_endpoint" {
  type        = string
  description = "Endpoint of the third engine."
}

variable "image" {
  type        = string
  default     = "berth-test/app:1"
  description = "Image of both services: an HTTP server on $PORT (8080) with /healthz."
}

provider "berth" {
  engines = {
    node1 = { endpoint = var.node1_endpoint }
    node2 = { endpoint = var.node2_endpoint }
    node3 = { endpoint = var.node3_endpoint }
  }
}

# Each host gets its own port_range because the demo's engines all run on
# one machine and publish on the same 127.0.0.1; engines on separate
# machines can share the default range.
resource "berth_pool" "demo" {
  name     = "demo"
  strategy = "spread"
  hosts = {
    node1 = { labels = { zone = "a" }, cpu = 4, memory = "2GiB", port_range = "30000-30999" }
    node2 = { labels = { zone = "b" }, cpu = 4, memory = "2GiB", port_range = "31000-31999" }
    node3 = { labels = { zone = "c", disk = "ssd" }, cpu = 4, memory = "2GiB", port_range = "32000-32767" }
  }
}

# 8 web servers spread over the three hosts, each published on a host port
# Berth picks (external = 0).
resource "berth_container" "web" {
  count        = 8
  pool         = berth_pool.demo.id
  name         = "web-${count.index}"
  image        = var.image
  env          = { MESSAGE = "web-${count.index}" }
  cpu          = 0.25
  memory       = "64MiB"
  ports        = [{ internal = 8080, external = 0 }]
  spread_group = "web"
  max_per_host = 3
  healthcheck = {
    test     = ["CMD", "/app", "healthcheck"]
    interval = "2s"
    retries  = 3
  }
}

# 4 workers kept off zone a.
resource "berth_container" "worker" {
  count        = 4
  pool         = berth_pool.demo.id
  name         = "worker-${count.index}"
  image        = var.image
  env          = { MESSAGE = "worker-${count.index}" }
  cpu          = 0.5
  memory       = "128MiB"
  constraints  = ["zone != a"]
  spread_group = "worker"
}

# Read after every container is in place, for the placement table.
data "berth_pool" "demo" {
  name       = berth_pool.demo.name
  depends_on = [berth_container.web, berth_container.worker]
}

locals {
  containers = concat(berth_container.web, berth_container.worker)
  by_host = {
    for host in keys(berth_pool.demo.hosts) : host => sort([for c in local.containers : c.name if c.host == host])
  }
}

output "hosts" {
  description = "Where each container landed."
  value       = { for c in local.containers : c.name => c.host }
}

output "web_urls" {
  description = "Each web server, on the host port Berth picked."
  value       = { for c in berth_container.web : c.name => "http://127.0.0.1:${c.published_ports[0].external}/ (${c.host})" }
}

output "placement" {
  description = "Host → containers, with CPU and memory used / free."
  value = join("\n", concat(
    [format("%-6s %-5s %-15s %-17s %s", "HOST", "COUNT", "CPU used/free", "MEMORY used/free", "CONTAINERS")],
    [for host, h in data.berth_pool.demo.hosts : format("%-6s %-5d %-15s %-17s %s",
      host, h.containers,
      format("%.2f/%.2f", h.cpu_reserved, h.cpu_free),
      format("%dMiB/%dMiB", floor(h.memory_reserved / 1048576), floor(h.memory_free / 1048576)),
      join(" ", local.by_host[host]),
    )],
  ))
}
