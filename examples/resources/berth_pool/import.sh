# A pool is imported by its name.
terraform import berth_pool.dc1 dc1
