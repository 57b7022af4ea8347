# A pool of the three engines of the provider example. Containers pick
# hosts by label: `zone` for spreading, `disk` for placement rules.
resource "berth_pool" "dc1" {
  name     = "dc1"
  strategy = "spread" # spread (default) | binpack | random
  hosts = {           # keys: engines of the provider block
    node1 = {
      labels = { zone = "a", disk = "ssd" }
      disk   = "500GiB" # space for volumes' size; unset: not accounted
    }
    node2 = {
      labels         = { zone = "b", disk = "ssd" }
      cpu            = 16      # schedulable CPUs; default: the engine's NCPU
      memory         = "64GiB" # schedulable memory; default: the engine's MemTotal
      max_containers = 200
      port_range     = "30000-32767" # host ports Berth picks for external = 0
    }
    node3 = {
      labels = { zone = "c", disk = "hdd" }
      gpus   = 2 # GPUs that containers reserve with gpus = 1
    }
  }
}

output "discovered" {
  value = { for name, h in berth_pool.dc1.hosts : name => "${h.discovered_cpus} CPUs, ${h.discovered_memory} bytes, Docker ${h.engine_version}" }
}
