# Three database volumes, spread across hosts, each reserving 50GiB of its
# host's disk. Each database mounts its own and lands on that volume's host.
resource "berth_volume" "pgdata" {
  count        = 3
  pool         = berth_pool.dc1.id
  name         = "pgdata-${count.index}"
  size         = "50GiB"
  spread_group = "pg"
  labels       = { team = "data" }

  # Destroying or replacing a volume loses its data.
  lifecycle {
    prevent_destroy = true
  }
}

resource "berth_container" "db" {
  count  = 3
  pool   = berth_pool.dc1.id
  name   = "db-${count.index}"
  image  = "postgres:16"
  memory = "1GiB"
  mounts = [{ type = "volume", source = berth_volume.pgdata[count.index].name, target = "/var/lib/postgresql/data" }]
}

# A volume in memory, with the local driver's options.
resource "berth_volume" "cache" {
  pool        = berth_pool.dc1.id
  name        = "cache"
  driver_opts = { type = "tmpfs", device = "tmpfs", o = "size=100m" }
}
