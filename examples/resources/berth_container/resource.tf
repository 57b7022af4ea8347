# Six web servers on the pool of the berth_pool example: only node1 and
# node2 have `disk = ssd`, and max_per_host = 3 lets each take three.
resource "berth_container" "web" {
  count        = 6
  pool         = berth_pool.dc1.id # a pool's id is its name: pool = "dc1" works as well
  name         = "web-${count.index}"
  image        = "nginx:1.27"
  command      = ["nginx", "-g", "daemon off;"]
  env          = { MODE = "prod" }
  cpu          = 0.5                               # reserved CPUs, also the CPU limit
  memory       = "256MiB"                          # reserved memory, also the memory limit
  ports        = [{ internal = 80, external = 0 }] # 0 = Berth picks a free host port
  constraints  = ["disk == ssd"]
  spread_group = "web" # members spread across hosts
  max_per_host = 3
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

# A GPU job: it lands on a host with a free GPU (node3 of the pool example)
# and is given that device alone.
resource "berth_container" "trainer" {
  pool   = berth_pool.dc1.id
  name   = "trainer"
  image  = "nvidia/cuda:12.4.1-base-ubuntu22.04"
  memory = "4GiB"
  gpus   = 1
}
