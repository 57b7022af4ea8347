# A per-host bridge network: containers of one host reach each other by
# name and alias.
resource "berth_network" "app" {
  pool = berth_pool.dc1.id
  name = "app"
}

# One L2 segment across the pool's hosts on eth0. Each host allocates from
# its own slice of the subnet (see hosts), so addresses are unique.
resource "berth_network" "lan" {
  pool               = berth_pool.dc1.id
  name               = "lan"
  driver             = "macvlan"
  parent             = "eth0"
  subnet             = "10.20.0.0/16"
  host_prefix_length = 20 # the default: 16 slices of the /16
  labels             = { team = "platform" }
}

output "lan_slices" {
  value = { for host, h in berth_network.lan.hosts : host => h.ip_range }
}
