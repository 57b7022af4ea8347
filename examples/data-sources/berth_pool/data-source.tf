data "berth_pool" "dc1" {
  name = "dc1"
}

output "free" {
  value = { for name, h in data.berth_pool.dc1.hosts : name => "${h.cpu_free} CPUs, ${floor(h.memory_free / 1048576)}MiB free, ${h.containers} containers" }
}
