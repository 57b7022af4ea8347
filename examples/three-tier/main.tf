# Berth three-tier stack: web servers published on host ports, an app tier
# and a database whose data lives in a Berth volume, joined across three
# engines by one macvlan network. Every host allocates from its own slice
# of the network's subnet, so addresses are unique across the pool; the
# database lands on its volume's host, and so does every replacement of it.
# `make demo-three-tier` passes the endpoints of three local engines and a
# bridge they share as `parent`.

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

variable "parent" {
  type        = string
  default     = "eth0"
  description = "Host interface, the same on every engine, that the internal network sits on."
}

variable "image" {
  type        = string
  default     = "berth-test/app:1"
  description = "Image of every tier: an HTTP server on 8080 with /healthz and /fetch?url=."
}

provider "berth" {
  engines = {
    node1 = { endpoint = var.node1_endpoint }
    node2 = { endpoint = var.node2_endpoint }
    node3 = { endpoint = var.node3_endpoint }
  }
}

# Each host gets its own port_range because the demo's engines all run on
# one machine and publish on the same 127.0.0.1.
resource "berth_pool" "shop" {
  name = "shop"
  hosts = {
    node1 = { cpu = 2, memory = "1GiB", disk = "4GiB", port_range = "28000-28099" }
    node2 = { cpu = 2, memory = "1GiB", disk = "4GiB", port_range = "28100-28199" }
    node3 = { cpu = 2, memory = "1GiB", disk = "4GiB", port_range = "28200-28299" }
  }
}

# Per host: web servers publish their ports from it. Older engines publish
# from the network whose name sorts first: "edge" comes before "internal".
resource "berth_network" "edge" {
  pool = berth_pool.shop.id
  name = "edge"
}

# Across hosts: the tiers reach each other wherever they landed. With /26
# slices, node1 allocates from .0/26, node2 from .64/26, node3 from .128/26.
resource "berth_network" "internal" {
  pool               = berth_pool.shop.id
  name               = "internal"
  driver             = "macvlan"
  parent             = var.parent
  subnet             = "10.240.0.0/24"
  host_prefix_length = 26
}

# The database's data: Berth places the volume (reserving 1GiB of its
# host's disk), and the database follows it.
resource "berth_volume" "db" {
  pool = berth_pool.shop.id
  name = "shop-db-data"
  size = "1GiB"
  # In production, add lifecycle { prevent_destroy = true }: destroying or
  # replacing a volume loses its data.
}

resource "berth_container" "db" {
  pool     = berth_pool.shop.id
  name     = "db"
  image    = var.image
  cpu      = 0.5
  memory   = "128MiB"
  env      = { MESSAGE = "db" }
  mounts   = [{ type = "volume", source = berth_volume.db.name, target = "/data" }]
  networks = [{ name = berth_network.internal.name }]
}

resource "berth_container" "app" {
  count        = 2
  pool         = berth_pool.shop.id
  name         = "app-${count.index}"
  image        = var.image
  cpu          = 0.25
  memory       = "64MiB"
  env          = { MESSAGE = "app-${count.index}", DB_ADDR = "${berth_container.db.network_addresses["internal"]}:8080" }
  networks     = [{ name = berth_network.internal.name }]
  spread_group = "app"
}

resource "berth_container" "web" {
  count        = 2
  pool         = berth_pool.shop.id
  name         = "web-${count.index}"
  image        = var.image
  cpu          = 0.25
  memory       = "64MiB"
  env          = { MESSAGE = "web-${count.index}" }
  ports        = [{ internal = 8080 }]
  networks     = [{ name = berth_network.edge.name }, { name = berth_network.internal.name }]
  spread_group = "web"
}

locals {
  containers = concat([berth_container.db], berth_container.app, berth_container.web)
  internal   = { for c in local.containers : c.name => c.network_addresses["internal"] }
  # web-0 asks app-0, which asks the database: web -> app -> db across hosts.
  db_url  = "http://${local.internal["db"]}:8080/"
  app_url = "http://${local.internal["app-0"]}:8080/fetch?url=${urlencode(local.db_url)}"
}

output "hosts" {
  description = "Where each container landed, and its address on the internal network."
  value       = { for c in local.containers : c.name => "${c.host} ${local.internal[c.name]}" }
}

output "db_volume" {
  description = "Where the database's volume lives (the database runs there too)."
  value       = "${berth_volume.db.name} on ${berth_volume.db.host}"
}

output "slices" {
  description = "Each host's slice of the internal subnet."
  value       = { for host, h in berth_network.internal.hosts : host => h.ip_range }
}

output "web_urls" {
  description = "Each web server, on the host port Berth picked."
  value       = [for c in berth_container.web : "http://${c.published_ports[0].address}/"]
}

output "through_the_tiers" {
  description = "A request to web-0 that app-0 relays from the database."
  value       = "http://${berth_container.web[0].published_ports[0].address}/fetch?url=${urlencode(local.app_url)}"
}
