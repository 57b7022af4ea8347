resource "berth_container" "web" {
  count        = 12
  pool         = berth_pool.dc1.id # a pool's id is its name: pool = "dc1" works as well
  name         = "web-${count.index}"
  image        = "nginx:1.27"
  command      = ["nginx", "-g", "daemon off;"]
  env          = { MODE = "prod" }
  cpu          = 0.5                               # reserved CPUs, also the CPU limit
  memory       = "256MiB"                          # reserved memory, also the memory limit
  ports        = [{ internal = 80, external = 0 }] # 0 = Berth picks a free host port
  constraints  = ["zone != c", "disk == ssd"]
  spread_group = "web" # members spread across hosts
  max_per_host = 4
  restart      = "unless-stopped"

  healthcheck = {
    test     = ["CMD", "curl", "-f", "http://localhost/"]
    interval = "10s"
    retries  = 3
  }

  timeouts {
    create = "10m"
  }
}

output "web" {
  value = { for c in berth_container.web : c.name => "${c.host}:${c.published_ports[0].external}" }
}
